#include "server/api/job_convert.h"

#include "absl/strings/str_cat.h"

namespace elexirion::api {

v1::JobState ToProtoState(store::JobState state) {
  switch (state) {
    case store::JobState::kQueued:
      return v1::JOB_STATE_QUEUED;
    case store::JobState::kRunning:
      return v1::JOB_STATE_RUNNING;
    case store::JobState::kSucceeded:
      return v1::JOB_STATE_SUCCEEDED;
    case store::JobState::kFailed:
      return v1::JOB_STATE_FAILED;
    case store::JobState::kCancelled:
      return v1::JOB_STATE_CANCELLED;
  }
  return v1::JOB_STATE_UNSPECIFIED;
}

absl::StatusOr<store::JobState> FromProtoState(v1::JobState state) {
  switch (state) {
    case v1::JOB_STATE_QUEUED:
      return store::JobState::kQueued;
    case v1::JOB_STATE_RUNNING:
      return store::JobState::kRunning;
    case v1::JOB_STATE_SUCCEEDED:
      return store::JobState::kSucceeded;
    case v1::JOB_STATE_FAILED:
      return store::JobState::kFailed;
    case v1::JOB_STATE_CANCELLED:
      return store::JobState::kCancelled;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("states: unknown job state ", static_cast<int>(state)));
  }
}

google::protobuf::Timestamp ToProtoTime(absl::Time t) {
  google::protobuf::Timestamp ts;
  if (t == store::kUnsetTime) return ts;
  const int64_t micros = absl::ToUnixMicros(t);
  ts.set_seconds(micros / 1000000);
  ts.set_nanos(static_cast<int32_t>((micros % 1000000) * 1000));
  return ts;
}

absl::StatusOr<v1::Job> ToProtoJob(const store::JobRecord& record) {
  v1::Job job;
  job.set_id(record.id);
  job.set_state(ToProtoState(record.state));
  if (!record.request.empty() && !job.mutable_request()->ParseFromString(record.request)) {
    return absl::DataLossError(absl::StrCat("job ", record.id, ": stored request is corrupt"));
  }
  if (!record.progress.empty() && !job.mutable_progress()->ParseFromString(record.progress)) {
    return absl::DataLossError(absl::StrCat("job ", record.id, ": stored progress is corrupt"));
  }
  if (!record.result.empty() && !job.mutable_result()->ParseFromString(record.result)) {
    return absl::DataLossError(absl::StrCat("job ", record.id, ": stored result is corrupt"));
  }
  v1::EndReason reason = v1::END_REASON_UNSPECIFIED;
  if (!record.end_reason.empty()) v1::EndReason_Parse(record.end_reason, &reason);
  job.set_end_reason(reason);
  job.set_error(record.error);
  job.set_attempt(static_cast<int32_t>(record.attempt));
  *job.mutable_create_time() = ToProtoTime(record.created_at);
  *job.mutable_start_time() = ToProtoTime(record.started_at);
  *job.mutable_end_time() = ToProtoTime(record.ended_at);
  job.set_last_event_seq(record.last_event_seq);
  return job;
}

}  // namespace elexirion::api
