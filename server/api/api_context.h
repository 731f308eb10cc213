// What the stateless RPC layer needs from the core, and the handler skeleton every unary RPC
// shares: admission -> auth -> core -> ToGrpcStatus.
#pragma once

#include <functional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "server/api/admission.h"
#include "server/api/auth.h"
#include "server/api/grpc_status.h"
#include "server/api/metrics_interceptor.h"
#include "server/pipeline/loader.h"

namespace elexirion {
class ThreadPool;
}
namespace elexirion::store {
class Store;
}
namespace elexirion::pipeline {
class PipelineExecutor;
}
namespace elexirion::learning {
class ExecutionIngestor;
struct LearningConfig;
}  // namespace elexirion::learning
namespace elexirion::jobs {
class JobEventBus;
class JobWorkerPool;
struct OptimizationEnvironment;
}  // namespace elexirion::jobs

namespace elexirion::api {

// Borrowed pointers, owned by the app's Server; all outlive the gRPC server.
struct ApiContext {
  const Authenticator* auth = nullptr;
  Admission* admission = nullptr;
  store::Store* store = nullptr;
  // Runs pipelines; its LlmClient is the provider router.
  const pipeline::PipelineExecutor* executor = nullptr;
  // Where ExecutePipeline work runs (never on gRPC threads).
  ThreadPool* execute_pool = nullptr;
  // Limits for pipelines received over the API.
  pipeline::LoadOptions load_options;
  // Execution time limit when the caller sets no deadline.
  absl::Duration default_execute_timeout = absl::Minutes(10);
  // Live job events for StreamProgress, and the workers to wake on a new job.
  jobs::JobEventBus* bus = nullptr;
  jobs::JobWorkerPool* workers = nullptr;
  // What OptimizeModule validates requests against.
  const jobs::OptimizationEnvironment* optimization = nullptr;
  // OptimizeModule answers RESOURCE_EXHAUSTED while this many jobs are queued.
  int64_t max_queued_jobs = 1000;
  // Durable execution telemetry (TelemetryService) and the learning policies.
  learning::ExecutionIngestor* ingestor = nullptr;
  const learning::LearningConfig* learning = nullptr;
};

// Runs `fn` (returning absl::Status) on the calling gRPC thread: only for quick, bounded work
// such as a store lookup. Long work goes to the job workers or the execution pool.
template <typename Fn>
grpc::ServerUnaryReactor* RunUnary(grpc::CallbackServerContext* ctx, const ApiContext& api,
                                   Fn&& fn) {
  auto* reactor = ctx->DefaultReactor();
  Admission::Ticket ticket;
  absl::Status status = api.admission->AdmitUnary(&ticket);
  if (status.ok()) status = api.auth->Authorize(*ctx);
  if (status.ok()) status = std::forward<Fn>(fn)();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// A streaming reactor (Base: grpc::ServerWriteReactor<T> or grpc::ServerReadReactor<T>) of
// `method` that ends at once with `status`.
template <typename Base>
class FinishedStream final : public Base {
 public:
  FinishedStream(const char* method, const grpc::Status& status) : metrics_(method) {
    metrics_.Finishing(status);
    this->Finish(status);
  }
  void OnDone() override {
    metrics_.Record();
    delete this;
  }

 private:
  StreamRpcRecorder metrics_;
};
template <typename T>
using FinishedWriter = FinishedStream<grpc::ServerWriteReactor<T>>;
template <typename T>
using FinishedReader = FinishedStream<grpc::ServerReadReactor<T>>;

}  // namespace elexirion::api
