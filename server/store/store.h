// The persistence seam of the service. One interface, several backends (SQLite now,
// PostgreSQL later); tests/store/store_conformance.h holds the suite every backend must pass.
//
// Conventions shared by all methods:
// - NOT_FOUND for an unknown job/program/pipeline/dataset/example; INVALID_ARGUMENT naming the
//   field for bad input (empty required key, malformed page token, ...); ALREADY_EXISTS for a
//   duplicate key the caller chose; UNAVAILABLE when the database is busy or unreachable
//   (retryable); DATA_LOSS for corruption.
// - Fenced job writes (HeartbeatJob, CheckpointJob, FinishJob, ReleaseJob, fenced
//   AppendJobEvent) return ABORTED "lease lost" (IsLeaseLost) when the job is no longer RUNNING
//   under (lease.worker_id, lease.attempt): the worker must stop and drop its results.
// - Paging: page_size <= 0 means kDefaultPageSize, larger than kMaxPageSize is clamped.
//   Page tokens are opaque, bound to the filter they were issued for, and keyset based (rows
//   inserted meanwhile never cause duplicates or skips of older rows).
// - Timestamps: see records.h (microsecond precision, kUnsetTime = not set).
//
// Implementations are thread safe, and safe with several processes on one database.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/store/records.h"

namespace elexirion::store {

inline constexpr int kDefaultPageSize = 50;
inline constexpr int kMaxPageSize = 1000;

// True for the error fenced job writes return when the caller's lease is gone.
bool IsLeaseLost(const absl::Status& status);

class Store {
 public:
  virtual ~Store() = default;

  // ---- Health
  // OK when the database answers a trivial query.
  virtual absl::Status Ping() = 0;
  // Full consistency check of the database (SQLite: PRAGMA integrity_check). DATA_LOSS with the
  // first problems when it fails.
  virtual absl::Status IntegrityCheck() = 0;

  // ---- Jobs
  // Persists a QUEUED job. Taken from `job`: id (generated when empty), request_id,
  // program_name (required), optimizer, request, progress, run_after, created_at (store clock
  // when unset); the rest starts at defaults. Idempotent on a non-empty request_id: when a job
  // with that key exists it is returned unchanged and `*already_existed` is set (concurrent
  // creates with one key make exactly one row). A `first_event` becomes event 1 of a new job in
  // the same transaction, so no worker can claim the job (and append events) before it.
  virtual absl::StatusOr<JobRecord> CreateJob(const JobRecord& job,
                                              bool* already_existed = nullptr,
                                              const NewJobEvent* first_event = nullptr) = 0;
  virtual absl::StatusOr<JobRecord> GetJob(const std::string& id) = 0;
  // Newest first (created_at, then id).
  virtual absl::StatusOr<JobPage> ListJobs(const JobFilter& filter, int page_size,
                                           const std::string& page_token) = 0;
  // Number of jobs in any of `states` (all jobs when empty).
  virtual absl::StatusOr<int64_t> CountJobs(const std::vector<JobState>& states) = 0;

  // Atomically claims the oldest runnable job: QUEUED with run_after <= now and no cancel
  // requested, or RUNNING with lease_expires_at <= now (its worker died: crash recovery).
  // The job becomes RUNNING under `worker_id` until now + lease, attempt + 1. nullopt when
  // nothing is runnable. A recovered job may carry cancel_requested: finish it as cancelled.
  // The caller enforces its max-attempts policy by looking at `attempt`.
  virtual absl::StatusOr<std::optional<JobRecord>> ClaimJob(const std::string& worker_id,
                                                            absl::Duration lease,
                                                            absl::Time now) = 0;
  // Extends the lease to `new_expiry`. Fenced. Tells the worker whether a cancel is pending.
  virtual absl::StatusOr<HeartbeatResult> HeartbeatJob(const JobLease& lease,
                                                       absl::Time new_expiry) = 0;
  // Stores resume state and live progress. Fenced.
  virtual absl::Status CheckpointJob(const JobLease& lease, const std::string& checkpoint,
                                     const std::string& progress) = 0;
  // Ends the job (outcome.state must be terminal), ended_at = now, lease cleared. Fenced.
  virtual absl::StatusOr<JobRecord> FinishJob(const JobLease& lease, const JobOutcome& outcome,
                                              absl::Time now) = 0;
  // Gives the job back: QUEUED, claimable from `run_after` (reschedule, graceful drain),
  // `error` recorded as the last error. If a cancel was requested meanwhile the job becomes
  // CANCELLED instead (kEndReasonCancelled). Fenced.
  virtual absl::StatusOr<JobRecord> ReleaseJob(const JobLease& lease, absl::Time run_after,
                                               const std::string& error, absl::Time now) = 0;
  // QUEUED -> CANCELLED at once (kEndReasonCancelled, ended_at = now); RUNNING -> sets
  // cancel_requested (idempotent; the worker sees it on its next heartbeat); an ended job ->
  // FAILED_PRECONDITION. Returns the job after the change.
  virtual absl::StatusOr<JobRecord> RequestCancel(const std::string& id, absl::Time now) = 0;
  // Deletes ended jobs (with their events) whose ended_at < `ended_before`, at most `limit`
  // per call (keeps write transactions short). Returns the number deleted.
  virtual absl::StatusOr<int64_t> PruneJobs(absl::Time ended_before, int limit) = 0;

  // ---- Job events
  // Appends an event with the next per-job seq (1, 2, 3, ...) and sets jobs.last_event_seq.
  // With `fence` the append is a fenced worker write; without, it is accepted in any state
  // (API-side events such as the cancel of a queued job).
  virtual absl::StatusOr<int64_t> AppendJobEvent(const std::string& job_id,
                                                 const std::optional<JobLease>& fence,
                                                 const std::string& kind,
                                                 const std::string& payload, absl::Time now) = 0;
  // Events with seq > after_seq, ascending, at most `limit` (<= 0: 1000). NOT_FOUND for an
  // unknown job.
  virtual absl::StatusOr<std::vector<JobEventRecord>> ListJobEvents(const std::string& job_id,
                                                                    int64_t after_seq,
                                                                    int limit) = 0;

  // ---- Programs
  // Stores `program` as version max+1 of its name (assigned atomically; version in the input
  // is ignored); created_at = store clock when unset. With production = true it is promoted
  // in the same transaction. Idempotent on a non-empty (name, job_id): a retried job gets its
  // earlier version back and `*already_existed` is set.
  virtual absl::StatusOr<ProgramRecord> CreateProgramVersion(const ProgramRecord& program,
                                                             bool* already_existed = nullptr) = 0;
  virtual absl::StatusOr<ProgramRecord> GetProgram(const std::string& name, int64_t version) = 0;
  // Highest version.
  virtual absl::StatusOr<ProgramRecord> GetLatestProgram(const std::string& name) = 0;
  // NOT_FOUND when no version of `name` was promoted.
  virtual absl::StatusOr<ProgramRecord> GetProductionProgram(const std::string& name) = 0;
  // With a name: its versions, highest first. Without: the newest version of every name,
  // newest created first.
  virtual absl::StatusOr<ProgramPage> ListPrograms(const std::string& name, int page_size,
                                                   const std::string& page_token) = 0;
  // The most recently created version of any program optimizing `pipeline_name` (its
  // created_at is when that pipeline was last optimized). NOT_FOUND when there is none.
  virtual absl::StatusOr<ProgramRecord> GetLatestProgramForPipeline(
      const std::string& pipeline_name) = 0;
  // Makes `version` the only production version of `name` (rollback = promote an older one).
  virtual absl::StatusOr<ProgramRecord> PromoteProgram(const std::string& name,
                                                       int64_t version) = 0;

  // ---- Pipelines
  // Inserts (revision 1) or replaces the yaml (revision + 1); updated_at = store clock when
  // unset.
  virtual absl::StatusOr<PipelineRecord> UpsertPipeline(const PipelineRecord& pipeline) = 0;
  virtual absl::StatusOr<PipelineRecord> GetPipeline(const std::string& name) = 0;
  virtual absl::StatusOr<PipelinePage> ListPipelines(int page_size,
                                                     const std::string& page_token) = 0;
  virtual absl::Status DeletePipeline(const std::string& name) = 0;

  // ---- Datasets and examples
  // ALREADY_EXISTS when the name is taken. example_count in the input is ignored.
  virtual absl::StatusOr<DatasetRecord> CreateDataset(const DatasetRecord& dataset) = 0;
  virtual absl::StatusOr<DatasetRecord> GetDataset(const std::string& name) = 0;
  virtual absl::StatusOr<DatasetPage> ListDatasets(int page_size,
                                                   const std::string& page_token) = 0;
  // Deletes the dataset and all its examples.
  virtual absl::Status DeleteDataset(const std::string& name) = 0;
  // Adds examples in one transaction, skipping duplicates by content_hash (against the dataset
  // and earlier entries of the batch). ExampleRecord::dataset is ignored. A caller-chosen id
  // that is taken fails the whole batch with ALREADY_EXISTS.
  virtual absl::StatusOr<AddExamplesResult> AddExamples(
      const std::string& dataset, const std::vector<ExampleRecord>& examples) = 0;
  // Oldest first.
  virtual absl::StatusOr<ExamplePage> ListExamples(const std::string& dataset, int page_size,
                                                   const std::string& page_token) = 0;
  virtual absl::Status DeleteExample(const std::string& dataset, const std::string& id) = 0;
  // Examples of `dataset` with created_at >= since.
  virtual absl::StatusOr<int64_t> CountExamplesSince(const std::string& dataset,
                                                     absl::Time since) = 0;

  // ---- Execution telemetry
  // Stores the rows in ONE transaction; the result has one entry per row, in order. A row
  // with a (pipeline_name, record_id) already stored is an OK duplicate returning the existing
  // id; a malformed row (empty pipeline_name) is rejected alone. The returned status is not
  // OK only when the transaction itself failed (then nothing was stored).
  virtual absl::StatusOr<std::vector<ExecutionInsertResult>> InsertExecutions(
      const std::vector<ExecutionRecordRow>& rows) = 0;
  // Rows of `pipeline_name` with since <= time < until, oldest first, at most `limit`
  // (<= 0: 1000).
  virtual absl::StatusOr<std::vector<ExecutionRecordRow>> ListExecutions(
      const std::string& pipeline_name, absl::Time since, absl::Time until, int limit) = 0;
  // Deletes rows with time < before, at most `limit`. Returns the number deleted.
  virtual absl::StatusOr<int64_t> PruneExecutions(absl::Time before, int limit) = 0;
  // Aggregates of the rows of `pipeline_name` with since <= time < until.
  virtual absl::StatusOr<ExecutionSummary> SummarizeExecutions(const std::string& pipeline_name,
                                                               absl::Time since,
                                                               absl::Time until) = 0;

  // Inserts or replaces the baseline of baseline.pipeline_name.
  virtual absl::Status PutPipelineBaseline(const PipelineBaselineRecord& baseline) = 0;
  // NOT_FOUND when none was stored.
  virtual absl::StatusOr<PipelineBaselineRecord> GetPipelineBaseline(
      const std::string& pipeline_name) = 0;

  // ---- LLM response cache (key: caller-computed hash of the normalized request)
  virtual absl::StatusOr<std::optional<std::string>> GetCachedLlmResponse(
      const std::string& key) = 0;
  // Inserts or replaces.
  virtual absl::Status PutCachedLlmResponse(const std::string& key,
                                            const std::string& response_json) = 0;
  // Deletes entries written before `before`, at most `limit`. Returns the number deleted.
  virtual absl::StatusOr<int64_t> PruneLlmCache(absl::Time before, int limit) = 0;

  // ---- Schedules
  // True for exactly one caller ever per (schedule_name, slot_key), across threads, processes
  // and replicas: the winner's `owner` and `outcome` are recorded with the slot.
  virtual absl::StatusOr<bool> TryClaimScheduleSlot(const std::string& schedule_name,
                                                    const std::string& slot_key,
                                                    const std::string& owner,
                                                    const std::string& outcome,
                                                    absl::Time now) = 0;
  // The claimed slot, or nullopt when nobody claimed it yet.
  virtual absl::StatusOr<std::optional<ScheduleSlotRecord>> GetScheduleSlot(
      const std::string& schedule_name, const std::string& slot_key) = 0;
};

}  // namespace elexirion::store
