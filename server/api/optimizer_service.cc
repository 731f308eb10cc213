#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/time_util.h"
#include "server/api/job_convert.h"
#include "server/api/optimize_request.h"
#include "server/api/services.h"
#include "server/api/stream_progress.h"
#include "server/common/status_macros.h"
#include "server/jobs/worker_pool.h"
#include "server/store/store.h"

namespace elexirion::api {
namespace {

// `field` is the request's name for it (GetJob: id, StreamProgress: job_id).
absl::Status RequireJobId(const std::string& id, const char* field = "id") {
  if (id.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  if (id.size() > 128) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": longer than 128 characters"));
  }
  return absl::OkStatus();
}

}  // namespace

ServerUnaryReactor* OptimizerServiceImpl::OptimizeModule(CallbackServerContext* ctx,
                                                         const v1::OptimizeModuleRequest* request,
                                                         v1::Job* response) {
  return RunUnary(ctx, api_, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(store::JobRecord record, SubmitOptimizeJob(api_, *request));
    ASSIGN_OR_RETURN(*response, ToProtoJob(record));
    return absl::OkStatus();
  });
}

ServerUnaryReactor* OptimizerServiceImpl::GetJob(CallbackServerContext* ctx,
                                                 const v1::GetJobRequest* request,
                                                 v1::Job* response) {
  return RunUnary(ctx, api_, [&]() -> absl::Status {
    RETURN_IF_ERROR(RequireJobId(request->id()));
    ASSIGN_OR_RETURN(store::JobRecord record, api_.store->GetJob(request->id()));
    ASSIGN_OR_RETURN(*response, ToProtoJob(record));
    return absl::OkStatus();
  });
}

ServerUnaryReactor* OptimizerServiceImpl::ListJobs(CallbackServerContext* ctx,
                                                   const v1::ListJobsRequest* request,
                                                   v1::ListJobsResponse* response) {
  return RunUnary(ctx, api_, [&]() -> absl::Status {
    if (request->page_size() < 0 || request->page_size() > store::kMaxPageSize) {
      return absl::InvalidArgumentError(
          absl::StrCat("page_size: must be in 0..", store::kMaxPageSize));
    }
    store::JobFilter filter;
    filter.program_name = request->program_name();
    for (int state : request->states()) {
      ASSIGN_OR_RETURN(store::JobState s, FromProtoState(static_cast<v1::JobState>(state)));
      filter.states.push_back(s);
    }
    ASSIGN_OR_RETURN(store::JobPage page,
                     api_.store->ListJobs(filter, request->page_size(), request->page_token()));
    for (const auto& record : page.jobs) {
      ASSIGN_OR_RETURN(*response->add_jobs(), ToProtoJob(record));
    }
    response->set_next_page_token(page.next_page_token);
    return absl::OkStatus();
  });
}

ServerUnaryReactor* OptimizerServiceImpl::CancelJob(CallbackServerContext* ctx,
                                                    const v1::CancelJobRequest* request,
                                                    v1::Job* response) {
  return RunUnary(ctx, api_, [&]() -> absl::Status {
    RETURN_IF_ERROR(RequireJobId(request->id()));
    const absl::Time now = absl::Now();
    ASSIGN_OR_RETURN(store::JobRecord record, api_.store->RequestCancel(request->id(), now));
    if (record.state == store::JobState::kCancelled) {
      // A queued job ends here; a running one is ended (and its event written) by its worker.
      v1::ProgressEvent event;
      event.mutable_state_changed()->set_state(v1::JOB_STATE_CANCELLED);
      event.mutable_state_changed()->set_end_reason(v1::END_REASON_CANCELLED);
      event.mutable_state_changed()->set_message("cancelled before it started");
      ASSIGN_OR_RETURN(int64_t seq,
                       api_.store->AppendJobEvent(record.id, std::nullopt, "state_changed",
                                                  event.SerializeAsString(), now));
      record.last_event_seq = seq;
      // Watchers already following the queued job end with it.
      event.set_job_id(record.id);
      event.set_seq(seq);
      *event.mutable_time() =
          google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(now));
      api_.bus->Publish(event);
    }
    ASSIGN_OR_RETURN(*response, ToProtoJob(record));
    return absl::OkStatus();
  });
}

template <typename Response>
grpc::ServerWriteReactor<Response>* OptimizerServiceImpl::StartProgressStream(
    CallbackServerContext* ctx, const v1::StreamProgressRequest* request) {
  Admission::Ticket ticket;
  absl::Status status = api_.admission->AdmitStream(&ticket);
  if (status.ok()) status = api_.auth->Authorize(*ctx);
  if (status.ok()) status = RequireJobId(request->job_id(), "job_id");
  if (status.ok() && request->after_seq() < 0) {
    status = absl::InvalidArgumentError("after_seq: must be >= 0");
  }
  absl::StatusOr<store::JobRecord> job = status.ok() ? api_.store->GetJob(request->job_id())
                                                     : absl::StatusOr<store::JobRecord>(status);
  if (!job.ok()) {
    constexpr const char* kMethod = std::is_same_v<Response, v1::ProgressEvent>
                                        ? kStreamProgressMethod
                                        : kStreamProgressBatchesMethod;
    return new FinishedWriter<Response>(kMethod, ToGrpcStatus(job.status()));
  }
  const bool ended = job->state == store::JobState::kSucceeded ||
                     job->state == store::JobState::kFailed ||
                     job->state == store::JobState::kCancelled;
  return new ProgressStreamReactor<Response>(api_.store, api_.bus, job->id, request->after_seq(),
                                             job->last_event_seq, ended, std::move(ticket));
}

grpc::ServerWriteReactor<v1::ProgressEvent>* OptimizerServiceImpl::StreamProgress(
    CallbackServerContext* ctx, const v1::StreamProgressRequest* request) {
  return StartProgressStream<v1::ProgressEvent>(ctx, request);
}

grpc::ServerWriteReactor<v1::ProgressEventBatch>* OptimizerServiceImpl::StreamProgressBatches(
    CallbackServerContext* ctx, const v1::StreamProgressRequest* request) {
  return StartProgressStream<v1::ProgressEventBatch>(ctx, request);
}

}  // namespace elexirion::api
