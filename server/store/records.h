// Plain records persisted by a Store. No protobuf here: payloads that come from the API (a
// job's request, its result program, progress, event bodies) are opaque blobs the caller
// serializes (protobuf binary or JSON) and the store never looks into.
//
// Times: every absl::Time is stored with microsecond precision (SQLite and PostgreSQL alike),
// so a record read back compares equal to the one written only after truncation to
// microseconds; records returned by the store are already truncated. `kUnsetTime`
// (absl::UnixEpoch(), the proto3 Timestamp default) means "not set": the store keeps it as
// NULL where a column is nullable, and fills unset creation times with its clock.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace elexirion::store {

inline constexpr absl::Time kUnsetTime = absl::UnixEpoch();

// ---------------------------------------------------------------------------------------
// Jobs

// Numeric values match elexirion.v1.JobState, so `static_cast` converts in both directions.
enum class JobState {
  kQueued = 1,
  kRunning = 2,
  kSucceeded = 3,
  kFailed = 4,
  kCancelled = 5,
};

// "queued", "running", "succeeded", "failed", "cancelled" (the stored spelling); "unknown"
// for a value outside the enum.
const char* JobStateName(JobState state);
// Inverse of JobStateName. Returns false for anything else.
bool ParseJobState(std::string_view name, JobState* state);
// True for kSucceeded, kFailed and kCancelled.
bool IsTerminal(JobState state);

// end_reason the store itself writes when it cancels a job (RequestCancel on a queued job,
// ReleaseJob of a job whose cancel was requested). Spelled like the elexirion.v1.EndReason
// enum value name; callers are encouraged to store EndReason_Name() the same way.
inline constexpr char kEndReasonCancelled[] = "END_REASON_CANCELLED";

struct JobRecord {
  // Store-assigned (16 hex chars) when empty on create.
  std::string id;
  // Client idempotency key; empty = none. Unique among all jobs when set.
  std::string request_id;
  std::string program_name;
  std::string optimizer;
  JobState state = JobState::kQueued;
  // Opaque blobs (serialized OptimizeModuleRequest / Program / JobProgress / optimizer state).
  std::string request;
  std::string result;
  std::string progress;
  // Optimizer progress for resume after a crash. Left EMPTY by ListJobs (it can be large);
  // GetJob and ClaimJob fill it.
  std::string checkpoint;
  std::string end_reason;
  std::string error;
  // Number of claims so far; it is also the fencing token of the current lease.
  int64_t attempt = 0;
  std::string lease_owner;
  absl::Time lease_expires_at = kUnsetTime;
  bool cancel_requested = false;
  // Not claimable before this time (retry backoff, Retry-After reschedule).
  absl::Time run_after = kUnsetTime;
  absl::Time created_at = kUnsetTime;
  // First claim; kept across re-claims.
  absl::Time started_at = kUnsetTime;
  absl::Time ended_at = kUnsetTime;
  int64_t last_event_seq = 0;
};

// Proof of holding a job's lease: every worker write is fenced on (worker_id, attempt), so a
// worker whose lease expired and was re-claimed can never write again.
struct JobLease {
  std::string job_id;
  std::string worker_id;
  int64_t attempt = 0;
};
inline JobLease LeaseOf(const JobRecord& job) {
  return JobLease{job.id, job.lease_owner, job.attempt};
}

struct JobFilter {
  // Empty = every state.
  std::vector<JobState> states;
  // Empty = every program.
  std::string program_name;
};

struct JobPage {
  // Newest first.
  std::vector<JobRecord> jobs;
  // Empty when there are no more results.
  std::string next_page_token;
};

struct JobEventRecord {
  std::string job_id;
  // 1, 2, 3, ... per job, without gaps.
  int64_t seq = 0;
  // Free-form discriminator, e.g. "state_changed", "trial_finished".
  std::string kind;
  std::string payload;
  absl::Time time = kUnsetTime;
};

// An event to append atomically with a state change (see JobOutcome::event).
struct NewJobEvent {
  std::string kind;
  std::string payload;
};

// How a worker ends a job (FinishJob).
struct JobOutcome {
  // kSucceeded, kFailed or kCancelled.
  JobState state = JobState::kSucceeded;
  std::string result;
  std::string end_reason;
  std::string error;
  // Final progress blob; nullopt keeps the stored one.
  std::optional<std::string> progress;
  // Appended in the same transaction, so the terminal event exists iff the job ended.
  std::optional<NewJobEvent> event;
};

// Returned by HeartbeatJob.
struct HeartbeatResult {
  // Set by RequestCancel: the worker should stop and finish the job as kCancelled.
  bool cancel_requested = false;
  absl::Time lease_expires_at = kUnsetTime;
};

// ---------------------------------------------------------------------------------------
// Programs

struct ProgramRecord {
  std::string name;
  // 1-based, assigned by CreateProgramVersion.
  int64_t version = 0;
  std::string pipeline_name;
  // Job that produced it; empty for none. (name, job_id) is unique when set.
  std::string job_id;
  std::string optimizer;
  std::string dspy_json;
  std::string optimized_yaml;
  std::string scores_json;
  // At most one version per name is production.
  bool production = false;
  absl::Time created_at = kUnsetTime;
};

struct ProgramPage {
  std::vector<ProgramRecord> programs;
  std::string next_page_token;
};

// ---------------------------------------------------------------------------------------
// Pipelines

struct PipelineRecord {
  std::string name;
  std::string yaml;
  // 1 on first upsert, +1 on each later one.
  int64_t revision = 0;
  absl::Time updated_at = kUnsetTime;
};

struct PipelinePage {
  // By name.
  std::vector<PipelineRecord> pipelines;
  std::string next_page_token;
};

// ---------------------------------------------------------------------------------------
// Datasets and examples

struct DatasetRecord {
  std::string name;
  std::string pipeline_name;
  absl::Time created_at = kUnsetTime;
  // Maintained by the store (read-only for callers).
  int64_t example_count = 0;
};

struct DatasetPage {
  // By name.
  std::vector<DatasetRecord> datasets;
  std::string next_page_token;
};

struct ExampleRecord {
  std::string dataset;
  // Store-assigned 8 hex chars when empty; unique within the dataset.
  std::string id;
  std::string input_json;
  std::string expected_output_json;
  std::string metadata_json;
  // (REQUIRED) Caller-computed hash of the canonical content; unique within the dataset.
  std::string content_hash;
  absl::Time created_at = kUnsetTime;
};

struct ExamplePage {
  // Oldest first (insertion order).
  std::vector<ExampleRecord> examples;
  std::string next_page_token;
};

struct AddExamplesResult {
  // Ids of the examples added, in request order (duplicates have none).
  std::vector<std::string> ids;
  // Examples skipped because the dataset (or an earlier one in the batch) has the same
  // content_hash.
  int64_t duplicates = 0;
};

// ---------------------------------------------------------------------------------------
// Execution telemetry

struct ExecutionRecordRow {
  // Store-assigned (16 hex chars) when empty.
  std::string id;
  // Client idempotency key; empty = none. Unique per pipeline when set.
  std::string record_id;
  std::string pipeline_name;
  int64_t program_version = 0;
  bool success = false;
  double duration_seconds = 0;
  double quality_score = 0;
  std::string input_json;
  std::string output_json;
  std::string metadata_json;
  // Store clock when unset.
  absl::Time time = kUnsetTime;
  // Training data harvested from this execution: when set, `harvest->dataset` gets this
  // example IN THE SAME TRANSACTION as the row (the dataset is created for pipeline_name when
  // missing). Skipped as a duplicate when the dataset has its content_hash, and when the row
  // itself is a duplicate. Not read back by ListExecutions.
  std::optional<ExampleRecord> harvest;
};

// Per-row outcome of InsertExecutions.
struct ExecutionInsertResult {
  // Not OK when this row alone was rejected (the others are still stored).
  absl::Status status;
  // Id of the stored row (the existing one for a duplicate).
  std::string id;
  // True when a row with the same (pipeline_name, record_id) already existed.
  bool duplicate = false;
  // Id of the example harvested from this row; empty when none was added.
  std::string example_id;
};

// Aggregates of the executions of one pipeline in a time window (SummarizeExecutions).
struct ExecutionSummary {
  int64_t executions = 0;
  int64_t successes = 0;
  // Mean of quality_score over all executions; 0 when there are none.
  double mean_quality = 0;
  // Nearest-rank percentiles of duration_seconds; 0 when there are none.
  double latency_p50_seconds = 0;
  double latency_p95_seconds = 0;
  double latency_p99_seconds = 0;
};

// The quality a pipeline is expected to keep (continuous learning's baseline), refreshed by
// the weekly full re-optimization.
struct PipelineBaselineRecord {
  std::string pipeline_name;
  double success_rate = 0;
  double mean_quality = 0;
  // Executions the figures were computed from.
  int64_t executions = 0;
  // Store clock when unset.
  absl::Time updated_at = kUnsetTime;
};

// ---------------------------------------------------------------------------------------
// Schedules

// One claimed slot of a schedule (e.g. "learning/code_analysis/daily", "2026-11-26").
struct ScheduleSlotRecord {
  std::string schedule_name;
  std::string slot_key;
  // Who claimed it (replica id).
  std::string owner;
  // What the claimer did with the slot (free text, e.g. "job 1a2b..." or "skipped: ...").
  std::string outcome;
  absl::Time claimed_at = kUnsetTime;
};

}  // namespace elexirion::store
