// TelemetryService: the runtime reports executions; they are acknowledged once durable.
// Records go through the ExecutionIngestor's group commit, so a handler never waits on the
// database: the reactor finishes from the ingestor's writer thread.
#include <algorithm>
#include <memory>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "elexirion/internal/record_wire.pb.h"
#include "google/protobuf/arena.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/proto_buffer_reader.h"
#include "grpcpp/support/proto_buffer_writer.h"
#include "server/api/arena_allocator.h"
#include "server/api/execution_record.h"
#include "server/api/job_convert.h"
#include "server/api/services.h"
#include "server/api/validation.h"
#include "server/common/thread_pool.h"
#include "server/learning/execution_ingestor.h"
#include "server/learning/telemetry_metrics.h"
#include "server/learning/usage.h"

namespace elexirion::api {
namespace {

// One RecordExecutions call carries at most this many records.
constexpr int kMaxBatchRecords = 1000;
// A stream hands records to the ingestor in chunks of this size...
constexpr size_t kStreamChunkRecords = 500;
// ...and stops reading while this many chunks wait for their commit (flow control).
constexpr int kStreamMaxChunksInFlight = 2;
// Rejections listed in one response at most (the count is still exact).
constexpr int kMaxListedRejections = 1000;
constexpr absl::Duration kDefaultUsageWindow = absl::Hours(24);
constexpr absl::Duration kMaxUsageWindow = absl::Hours(24 * 90);

ExecutionRecordLimits Limits(const ApiContext& api) {
  ExecutionRecordLimits limits;
  limits.max_record_bytes = api.learning->max_record_bytes;
  return limits;
}

void AddRejection(v1::RecordExecutionsResponse* response, int index, const absl::Status& status) {
  if (response->rejected_size() >= kMaxListedRejections) return;
  auto* rejection = response->add_rejected();
  rejection->set_index(index);
  rejection->set_reason(std::string(status.message()));
}

// Parses a raw request (all its slices, without copying them into one string first).
bool ParseByteBuffer(const grpc::ByteBuffer& buffer, google::protobuf::Message* message) {
  grpc::ByteBuffer copy(buffer);  // shares the slices; the reader consumes its own handle
  grpc::ProtoBufferReader reader(&copy);
  return message->ParseFromZeroCopyStream(&reader);
}

// The response of a raw method, serialized into gRPC's buffer (OK, or why it failed).
grpc::Status SerializeReply(const v1::RecordExecutionsResponse& reply,
                            grpc::ByteBuffer* response) {
  bool own_buffer = false;
  return grpc::GenericSerialize<grpc::ProtoBufferWriter, v1::RecordExecutionsResponse>(
      reply, response, &own_buffer);
}

// Admission and auth for a unary call that finishes later; nullptr ticket = already finished.
std::shared_ptr<Admission::Ticket> Admit(CallbackServerContext* ctx, const ApiContext& api,
                                         ServerUnaryReactor* reactor) {
  Admission::Ticket ticket;
  absl::Status status = api.admission->AdmitUnary(&ticket);
  if (status.ok()) status = api.auth->Authorize(*ctx);
  if (!status.ok()) {
    reactor->Finish(ToGrpcStatus(status));
    return nullptr;
  }
  return std::make_shared<Admission::Ticket>(std::move(ticket));
}

// Reads a client stream of records, ingesting them in chunks as they arrive; answers once
// every chunk is durable.
// Each message is parsed as record_wire.proto's view, like RecordExecutions' records: a record
// protobuf would refuse (malformed, a string that is not UTF-8) is rejected alone at its
// position instead of ending the stream.
class StreamExecutionsReactor final : public grpc::ServerReadReactor<grpc::ByteBuffer> {
 public:
  StreamExecutionsReactor(const ApiContext& api, Admission::Ticket ticket,
                          grpc::ByteBuffer* response)
      : api_(api), ticket_(std::move(ticket)), response_(response) {
    StartRead(&record_);
  }

  void OnReadDone(bool ok) override {
    bool read_next = false;
    std::optional<grpc::Status> finish;
    {
      absl::MutexLock lock(&mu_);
      if (!ok) {
        reading_done_ = true;
        FlushLocked();
      } else {
        absl::StatusOr<learning::ExecutionInput> input =
            ParseByteBuffer(record_, &wire_)
                ? ValidateExecutionRecord(wire_, absl::StrCat("record[", index_, "]"),
                                          Limits(api_), absl::Now(), kStructDepthBudgetInStream)
                : absl::InvalidArgumentError(absl::StrCat(
                      "record[", index_,
                      "]: not a valid elexirion.v1.ExecutionRecord (malformed protobuf, or a "
                      "string field that is not UTF-8)"));
        if (input.ok()) {
          pending_.push_back(*std::move(input));
          pending_index_.push_back(index_);
        } else {
          AddRejection(&reply_, index_, input.status());
        }
        ++index_;
        if (pending_.size() >= kStreamChunkRecords) FlushLocked();
        read_next = ShouldReadLocked();
      }
      finish = MaybeFinishLocked();
    }
    // Outside the lock: gRPC may run OnReadDone / OnDone on another thread right away.
    if (read_next) StartRead(&record_);
    if (finish.has_value()) {
      metrics_.Finishing(*finish);
      Finish(*finish);
    }
  }

  void OnDone() override {
    metrics_.Record();
    delete this;
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
  }

 private:
  // True to read the next record now; false pauses reading while too many chunks wait for
  // their commit (the commit callback resumes it).
  bool ShouldReadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (failed_ || reading_done_) return false;
    if (chunks_in_flight_ >= kStreamMaxChunksInFlight) {
      read_paused_ = true;
      return false;
    }
    return true;
  }

  void FlushLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (pending_.empty() || failed_) return;
    std::vector<learning::ExecutionInput> chunk = std::move(pending_);
    std::vector<int> indexes = std::move(pending_index_);
    pending_.clear();
    pending_index_.clear();
    ++chunks_in_flight_;
    absl::Status queued = api_.ingestor->Ingest(
        std::move(chunk),
        [this, indexes = std::move(indexes)](std::vector<learning::IngestResult> results) {
          OnCommitted(indexes, results);
        });
    if (!queued.ok()) {
      --chunks_in_flight_;
      // Earlier chunks are durable; the client retries the rest (record_id keeps it exact).
      failed_ = true;
      failure_ = queued;
    }
  }

  void OnCommitted(const std::vector<int>& indexes,
                   const std::vector<learning::IngestResult>& results) {
    bool read_next = false;
    std::optional<grpc::Status> finish;
    {
      absl::MutexLock lock(&mu_);
      --chunks_in_flight_;
      for (size_t i = 0; i < results.size(); ++i) {
        const learning::IngestResult& r = results[i];
        if (!r.status.ok()) {
          AddRejection(&reply_, indexes[i], r.status);
          continue;
        }
        reply_.set_accepted(reply_.accepted() + 1);
        if (r.harvested) reply_.set_harvested(reply_.harvested() + 1);
      }
      if (read_paused_) {
        read_paused_ = false;
        read_next = ShouldReadLocked();
      }
      finish = MaybeFinishLocked();
    }
    if (read_next) StartRead(&record_);
    if (finish.has_value()) {
      metrics_.Finishing(*finish);
      Finish(*finish);
    }
  }

  // The final status once nothing is in flight and reading ended (or failed); nullopt while
  // the call goes on.
  std::optional<grpc::Status> MaybeFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || chunks_in_flight_ > 0) return std::nullopt;
    if (!failed_ && !reading_done_) return std::nullopt;
    finished_ = true;
    ticket_.Release();
    // Chunks may commit out of order (several ingest writers): list rejections by index.
    std::sort(reply_.mutable_rejected()->begin(), reply_.mutable_rejected()->end(),
              [](const auto& a, const auto& b) { return a.index() < b.index(); });
    if (failed_) return ToGrpcStatus(failure_);
    if (cancelled_) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    return SerializeReply(reply_, response_);
  }

  const ApiContext api_;
  Admission::Ticket ticket_;
  StreamRpcRecorder metrics_{kStreamExecutionsMethod};
  // gRPC's response buffer, written from reply_ when the call succeeds.
  grpc::ByteBuffer* const response_;
  v1::RecordExecutionsResponse reply_ ABSL_GUARDED_BY(mu_);
  // Written by gRPC for the one read in flight, read in OnReadDone.
  grpc::ByteBuffer record_;
  // The record being validated, reused for the next one (its strings keep their capacity).
  internal::ExecutionRecordWire wire_ ABSL_GUARDED_BY(mu_);
  absl::Mutex mu_;
  int index_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<learning::ExecutionInput> pending_ ABSL_GUARDED_BY(mu_);
  std::vector<int> pending_index_ ABSL_GUARDED_BY(mu_);
  int chunks_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool reading_done_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool failed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

ServerUnaryReactor* TelemetryServiceImpl::RecordExecution(CallbackServerContext* ctx,
                                                          const v1::RecordExecutionRequest* request,
                                                          v1::RecordExecutionResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  auto ticket = Admit(ctx, api_, reactor);
  if (ticket == nullptr) return reactor;
  if (!request->has_record()) {
    reactor->Finish(ToGrpcStatus(absl::InvalidArgumentError("record: required")));
    return reactor;
  }
  auto input = ValidateExecutionRecord(request->record(), "record", Limits(api_), absl::Now());
  if (!input.ok()) {
    reactor->Finish(ToGrpcStatus(input.status()));
    return reactor;
  }
  std::vector<learning::ExecutionInput> records;
  records.push_back(*std::move(input));
  absl::Status queued = api_.ingestor->Ingest(
      std::move(records), [reactor, response, ticket](std::vector<learning::IngestResult> r) {
        absl::Status status = r[0].status;
        if (status.ok()) {
          response->set_id(r[0].id);
          response->set_quality_score(r[0].quality_score);
          response->set_harvested(r[0].harvested);
        }
        ticket->Release();
        reactor->Finish(ToGrpcStatus(status));
      });
  if (!queued.ok()) reactor->Finish(ToGrpcStatus(queued));
  return reactor;
}

ServerUnaryReactor* TelemetryServiceImpl::RecordExecutions(CallbackServerContext* ctx,
                                                           const grpc::ByteBuffer* request,
                                                           grpc::ByteBuffer* response) {
  auto* reactor = ctx->DefaultReactor();
  auto ticket = Admit(ctx, api_, reactor);
  if (ticket == nullptr) return reactor;
  const absl::Time now = absl::Now();
  std::vector<learning::ExecutionInput> records;
  std::vector<int> indexes;
  auto reply = std::make_shared<v1::RecordExecutionsResponse>();
  {
    // The parsed request lives on an arena only while its records are validated: what goes
    // on are the ExecutionInputs, which own their text.
    google::protobuf::Arena arena(RequestArenaOptions());
    auto* parsed =
        google::protobuf::Arena::CreateMessage<internal::RecordExecutionsRequestWire>(&arena);
    if (!ParseByteBuffer(*request, parsed)) {
      reactor->Finish(ToGrpcStatus(absl::InvalidArgumentError(
          "request: not a valid elexirion.v1.RecordExecutionsRequest (malformed protobuf, or a "
          "string field that is not UTF-8)")));
      return reactor;
    }
    if (parsed->records().empty() || parsed->records_size() > kMaxBatchRecords) {
      reactor->Finish(ToGrpcStatus(absl::InvalidArgumentError(
          absl::StrCat("records: 1..", kMaxBatchRecords, " records per call, got ",
                       parsed->records_size(), " (use StreamExecutions for more)"))));
      return reactor;
    }
    records.reserve(parsed->records_size());
    for (int i = 0; i < parsed->records_size(); ++i) {
      auto input = ValidateExecutionRecord(parsed->records(i), absl::StrCat("records[", i, "]"),
                                           Limits(api_), now, kStructDepthBudgetInBatch);
      if (!input.ok()) {
        // Rejected alone: the rest of the batch is still recorded.
        AddRejection(reply.get(), i, input.status());
        continue;
      }
      records.push_back(*std::move(input));
      indexes.push_back(i);
    }
  }
  if (records.empty()) {
    reactor->Finish(SerializeReply(*reply, response));
    return reactor;
  }
  absl::Status queued = api_.ingestor->Ingest(
      std::move(records), [reactor, reply, response, ticket, indexes = std::move(indexes)](
                              std::vector<learning::IngestResult> results) {
        for (size_t i = 0; i < results.size(); ++i) {
          if (!results[i].status.ok()) {
            AddRejection(reply.get(), indexes[i], results[i].status);
            continue;
          }
          reply->set_accepted(reply->accepted() + 1);
          if (results[i].harvested) reply->set_harvested(reply->harvested() + 1);
        }
        ticket->Release();
        reactor->Finish(SerializeReply(*reply, response));
      });
  if (!queued.ok()) reactor->Finish(ToGrpcStatus(queued));
  return reactor;
}

grpc::ServerReadReactor<grpc::ByteBuffer>* TelemetryServiceImpl::StreamExecutions(
    CallbackServerContext* ctx, grpc::ByteBuffer* response) {
  Admission::Ticket ticket;
  absl::Status status = api_.admission->AdmitStream(&ticket);
  if (status.ok()) status = api_.auth->Authorize(*ctx);
  if (!status.ok()) {
    return new FinishedReader<grpc::ByteBuffer>(kStreamExecutionsMethod, ToGrpcStatus(status));
  }
  return new StreamExecutionsReactor(api_, std::move(ticket), response);
}

ServerUnaryReactor* TelemetryServiceImpl::GetUsageStats(CallbackServerContext* ctx,
                                                        const v1::GetUsageStatsRequest* request,
                                                        v1::UsageStats* response) {
  auto* reactor = ctx->DefaultReactor();
  auto ticket = Admit(ctx, api_, reactor);
  if (ticket == nullptr) return reactor;
  absl::Status valid = ValidateResourceName("pipeline_name", request->pipeline_name());
  absl::Duration window = kDefaultUsageWindow;
  if (valid.ok() && request->has_window()) {
    window =
        absl::Seconds(request->window().seconds()) + absl::Nanoseconds(request->window().nanos());
    if (window < absl::Minutes(1) || window > kMaxUsageWindow) {
      valid = absl::InvalidArgumentError("window: must be between 1 minute and 90 days");
    }
  }
  if (!valid.ok()) {
    reactor->Finish(ToGrpcStatus(valid));
    return reactor;
  }
  // A window over a busy pipeline reads many rows: off the gRPC thread.
  const ApiContext api = api_;
  bool scheduled =
      api_.execute_pool->TrySchedule([api, request, response, reactor, ticket, window] {
        const learning::PipelinePolicy policy = api.learning->PolicyFor(request->pipeline_name());
        auto usage = learning::ComputeUsageStats(*api.store, policy, window, absl::Now());
        if (usage.ok()) {
          learning::PublishUsage(*usage);
          response->set_pipeline_name(usage->pipeline_name);
          response->set_executions(usage->summary.executions);
          response->set_success_rate(usage->success_rate);
          response->set_mean_quality(usage->summary.mean_quality);
          response->set_latency_p50_seconds(usage->summary.latency_p50_seconds);
          response->set_latency_p95_seconds(usage->summary.latency_p95_seconds);
          response->set_latency_p99_seconds(usage->summary.latency_p99_seconds);
          response->set_new_examples_since_optimization(usage->new_examples_since_optimization);
          if (usage->last_optimization_time != store::kUnsetTime) {
            *response->mutable_last_optimization_time() =
                ToProtoTime(usage->last_optimization_time);
          }
        }
        ticket->Release();
        reactor->Finish(ToGrpcStatus(usage.status()));
      });
  if (!scheduled) {
    reactor->Finish(ToGrpcStatus(
        absl::ResourceExhaustedError("server busy: too much work queued; retry with backoff")));
  }
  return reactor;
}

}  // namespace elexirion::api
