// PostgreSQL implementation of Store, for several replicas sharing one database.
//
// Semantics are those of SqliteStore (tests/store/store_conformance.h is the contract); what
// differs is how they are kept across processes:
// - Job claims lock the picked row with FOR UPDATE SKIP LOCKED, so concurrent claimers on any
//   replica take different jobs without waiting for each other; leases and fencing are the
//   same (state, lease_owner, attempt) conditions as on SQLite.
// - Program versions are numbered under a per-name advisory transaction lock.
// - InsertExecutions writes a whole batch with one multi-row INSERT ... SELECT FROM unnest()
//   (group commit: one statement and one commit per batch).
// - Every job event (CreateJob's first event, AppendJobEvent, FinishJob's terminal event) also
//   runs `SELECT pg_notify('elexirion_job_events', <job_id>)` in the same transaction, so a
//   LISTENer on any replica hears about it exactly when it commits (cross-replica
//   StreamProgress). kJobEventsChannel names the channel.
// - The LLM cache and schedule slots are plain tables: shared by all replicas.
//
// Errors: a lost database is UNAVAILABLE to the caller (never a crash); the broken connection
// is dropped and the next call reconnects, so the store recovers by itself when the server is
// back. Reads, and writes that had not reached COMMIT, are retried once on a fresh connection;
// serialization failures and deadlocks are retried a few times. Messages never contain the
// DSN's password.
//
// Thread safety: thread safe; any number of processes may share one database.
#pragma once

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "server/common/clock.h"
#include "server/store/store.h"

namespace elexirion::store {

namespace pg {
class ConnectionPool;
class Tx;
}  // namespace pg

// The NOTIFY channel of job events; the payload is the job id.
inline constexpr char kJobEventsChannel[] = "elexirion_job_events";

class PostgresStore final : public Store {
 public:
  struct Options {
    // libpq connection string: "host=... port=... dbname=... user=... password=..." or
    // "postgresql://user:password@host:port/dbname". Required.
    std::string dsn;
    // Connections to the server (callers beyond wait for a free one).
    int pool_size = 8;
    // Per connection attempt (added to the DSN unless it sets connect_timeout).
    absl::Duration connect_timeout = absl::Seconds(5);
    // Fills unset creation times. nullptr = Clock::Real().
    Clock* clock = nullptr;
    // False: never changes the schema; a database at another version than this binary's is
    // FAILED_PRECONDITION (for checks that must not upgrade a database replicas share).
    bool migrate = true;
  };

  // Connects and migrates. UNAVAILABLE (unreachable server, refused login) or
  // INVALID_ARGUMENT (malformed DSN) with the password redacted; FAILED_PRECONDITION when the
  // database's schema is newer than this binary's.
  static absl::StatusOr<std::unique_ptr<PostgresStore>> Create(Options options);
  ~PostgresStore() override;

  // Applied schema version.
  absl::StatusOr<int> SchemaVersion();

  absl::Status Ping() override;
  absl::Status IntegrityCheck() override;

  absl::StatusOr<JobRecord> CreateJob(const JobRecord& job, bool* already_existed = nullptr,
                                      const NewJobEvent* first_event = nullptr) override;
  absl::StatusOr<JobRecord> GetJob(const std::string& id) override;
  absl::StatusOr<JobPage> ListJobs(const JobFilter& filter, int page_size,
                                   const std::string& page_token) override;
  absl::StatusOr<int64_t> CountJobs(const std::vector<JobState>& states) override;
  absl::StatusOr<std::optional<JobRecord>> ClaimJob(const std::string& worker_id,
                                                    absl::Duration lease, absl::Time now) override;
  absl::StatusOr<HeartbeatResult> HeartbeatJob(const JobLease& lease,
                                               absl::Time new_expiry) override;
  absl::Status CheckpointJob(const JobLease& lease, const std::string& checkpoint,
                             const std::string& progress) override;
  absl::StatusOr<JobRecord> FinishJob(const JobLease& lease, const JobOutcome& outcome,
                                      absl::Time now) override;
  absl::StatusOr<JobRecord> ReleaseJob(const JobLease& lease, absl::Time run_after,
                                       const std::string& error, absl::Time now) override;
  absl::StatusOr<JobRecord> RequestCancel(const std::string& id, absl::Time now) override;
  absl::StatusOr<int64_t> PruneJobs(absl::Time ended_before, int limit) override;

  absl::StatusOr<int64_t> AppendJobEvent(const std::string& job_id,
                                         const std::optional<JobLease>& fence,
                                         const std::string& kind, const std::string& payload,
                                         absl::Time now) override;
  absl::StatusOr<std::vector<JobEventRecord>> ListJobEvents(const std::string& job_id,
                                                            int64_t after_seq, int limit) override;

  absl::StatusOr<ProgramRecord> CreateProgramVersion(const ProgramRecord& program,
                                                     bool* already_existed = nullptr) override;
  absl::StatusOr<ProgramRecord> GetProgram(const std::string& name, int64_t version) override;
  absl::StatusOr<ProgramRecord> GetLatestProgram(const std::string& name) override;
  absl::StatusOr<ProgramRecord> GetProductionProgram(const std::string& name) override;
  absl::StatusOr<ProgramPage> ListPrograms(const std::string& name, int page_size,
                                           const std::string& page_token) override;
  absl::StatusOr<ProgramRecord> GetLatestProgramForPipeline(
      const std::string& pipeline_name) override;
  absl::StatusOr<ProgramRecord> PromoteProgram(const std::string& name, int64_t version) override;

  absl::StatusOr<PipelineRecord> UpsertPipeline(const PipelineRecord& pipeline) override;
  absl::StatusOr<PipelineRecord> GetPipeline(const std::string& name) override;
  absl::StatusOr<PipelinePage> ListPipelines(int page_size, const std::string& page_token) override;
  absl::Status DeletePipeline(const std::string& name) override;

  absl::StatusOr<DatasetRecord> CreateDataset(const DatasetRecord& dataset) override;
  absl::StatusOr<DatasetRecord> GetDataset(const std::string& name) override;
  absl::StatusOr<DatasetPage> ListDatasets(int page_size, const std::string& page_token) override;
  absl::Status DeleteDataset(const std::string& name) override;
  absl::StatusOr<AddExamplesResult> AddExamples(
      const std::string& dataset, const std::vector<ExampleRecord>& examples) override;
  absl::StatusOr<ExamplePage> ListExamples(const std::string& dataset, int page_size,
                                           const std::string& page_token) override;
  absl::Status DeleteExample(const std::string& dataset, const std::string& id) override;
  absl::StatusOr<int64_t> CountExamplesSince(const std::string& dataset, absl::Time since) override;

  absl::StatusOr<std::vector<ExecutionInsertResult>> InsertExecutions(
      const std::vector<ExecutionRecordRow>& rows) override;
  absl::StatusOr<std::vector<ExecutionRecordRow>> ListExecutions(const std::string& pipeline_name,
                                                                 absl::Time since, absl::Time until,
                                                                 int limit) override;
  absl::StatusOr<int64_t> PruneExecutions(absl::Time before, int limit) override;
  absl::StatusOr<ExecutionSummary> SummarizeExecutions(const std::string& pipeline_name,
                                                       absl::Time since, absl::Time until) override;

  absl::Status PutPipelineBaseline(const PipelineBaselineRecord& baseline) override;
  absl::StatusOr<PipelineBaselineRecord> GetPipelineBaseline(
      const std::string& pipeline_name) override;

  absl::StatusOr<std::optional<std::string>> GetCachedLlmResponse(const std::string& key) override;
  absl::Status PutCachedLlmResponse(const std::string& key,
                                    const std::string& response_json) override;
  absl::StatusOr<int64_t> PruneLlmCache(absl::Time before, int limit) override;

  absl::StatusOr<bool> TryClaimScheduleSlot(const std::string& schedule_name,
                                            const std::string& slot_key, const std::string& owner,
                                            const std::string& outcome, absl::Time now) override;
  absl::StatusOr<std::optional<ScheduleSlotRecord>> GetScheduleSlot(
      const std::string& schedule_name, const std::string& slot_key) override;

 private:
  using TxFn = absl::FunctionRef<absl::Status(pg::Tx&)>;

  PostgresStore(Options options, std::unique_ptr<pg::ConnectionPool> pool);

  enum class Mode { kRead, kTransaction, kAutocommit };
  // Runs `fn` in a transaction (BEGIN ... COMMIT); `fn` returning an error rolls it back.
  absl::Status Write(TxFn fn);
  // Runs `fn` outside an explicit transaction: each statement sees the latest committed state.
  absl::Status Read(TxFn fn);
  // For writes that are ONE statement (atomic by itself): no BEGIN/COMMIT round trips. Never
  // retried after a lost connection, since the statement may have committed.
  absl::Status WriteOne(TxFn fn);
  absl::Status Run(Mode mode, TxFn fn);
  absl::Time Now() const { return options_.clock->Now(); }

  const Options options_;
  const std::unique_ptr<pg::ConnectionPool> pool_;
  // PruneExecutions walks the pipelines round-robin: the next call starts after the last
  // pipeline this one pruned, so a backlog larger than one call's limit in some pipelines
  // does not keep the others' old rows forever.
  absl::Mutex prune_mu_;
  std::string prune_cursor_ ABSL_GUARDED_BY(prune_mu_);
};

}  // namespace elexirion::store
