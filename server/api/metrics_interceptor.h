// RPC metrics (method, status code, latency). Unary calls are recorded by a server
// interceptor, which also sees calls rejected before a handler ran. Streams are not
// intercepted: gRPC runs interceptors on every message of a call, which on a fan-out to
// many StreamProgress watchers or a long StreamExecutions costs CPU per message for a metric
// taken once per call. Stream reactors report themselves through StreamRpcRecorder.
#pragma once

#include <string>

#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/server_interceptor.h"

namespace elexirion::api {

// Full method names of the streaming RPCs, as the metrics label them.
inline constexpr char kStreamProgressMethod[] = "/elexirion.v1.OptimizerService/StreamProgress";
inline constexpr char kStreamProgressBatchesMethod[] =
    "/elexirion.v1.OptimizerService/StreamProgressBatches";
inline constexpr char kStreamExecutionsMethod[] = "/elexirion.v1.TelemetryService/StreamExecutions";

// Owned by a stream reactor: Finishing(status) where it calls Finish, Record() in OnDone.
class StreamRpcRecorder {
 public:
  explicit StreamRpcRecorder(std::string method) : method_(std::move(method)) {}
  void Finishing(const grpc::Status& status) { code_ = status.error_code(); }
  // A stream that ends without Finish was cancelled by its caller.
  void Record() const;

 private:
  const std::string method_;
  const absl::Time start_ = absl::Now();
  grpc::StatusCode code_ = grpc::StatusCode::CANCELLED;
};

class MetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;
};

}  // namespace elexirion::api
