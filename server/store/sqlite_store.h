// SQLite implementation of Store.
//
// Concurrency: one writer connection behind a mutex (SQLite allows one writer at a time
// anyway; serializing in-process avoids busy-waiting on our own lock) and a small pool of
// reader connections that WAL lets read concurrently with the writer. Every write is a
// `BEGIN IMMEDIATE` transaction, so other processes on the same file wait up to busy_timeout
// and then get UNAVAILABLE instead of an immediate SQLITE_BUSY.
//
// Durability: WAL with synchronous=NORMAL (default) never corrupts the database and never
// loses a committed transaction when the process crashes (kill -9); after an OS crash or power
// loss the last transactions committed before it may roll back. synchronous=FULL
// (Options::durability = kFull) syncs the WAL on every commit and also survives power loss, at
// several times the commit latency. WAL needs all processes on one host and a local
// filesystem: for several replicas use the PostgreSQL store.
//
// Thread safety: thread safe. Several processes may open the same file.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "server/common/clock.h"
#include "server/store/store.h"

namespace elexirion::store {

namespace sqlite {
class Connection;
}

class SqliteStore final : public Store {
 public:
  enum class Durability {
    // synchronous=NORMAL: survives process crashes; power loss may drop the newest commits.
    kNormal,
    // synchronous=FULL: every commit synced; survives power loss.
    kFull,
  };

  struct Options {
    // Database file; parent directories are created. ":memory:" = in_memory.
    std::string path;
    // A private in-memory database (tests): one connection, nothing on disk.
    bool in_memory = false;
    // How long a write waits for another process's write lock before UNAVAILABLE.
    absl::Duration busy_timeout = absl::Seconds(5);
    Durability durability = Durability::kNormal;
    // Reader connections; 0 = reads share the writer connection.
    int reader_connections = 4;
    // Largest string/blob accepted (SQLITE_LIMIT_LENGTH); larger values are INVALID_ARGUMENT.
    int max_value_bytes = 64 << 20;
    // Fills unset creation times. nullptr = Clock::Real().
    Clock* clock = nullptr;
    // WAL checkpoints run on a background thread this often, so the writer never stalls on
    // copying pages into the database file and syncing it. Zero = SQLite's automatic
    // checkpoints inside the committing write (as a safety net they also stay on, at a
    // much larger WAL size, when the background thread cannot keep up).
    absl::Duration checkpoint_interval = absl::Milliseconds(100);
    // False: never creates or changes the database; a missing file, or one at another schema
    // version than this binary's, is FAILED_PRECONDITION (for checks).
    bool migrate = true;
  };

  // Opens (creating if needed) and migrates the database. FAILED_PRECONDITION when its schema
  // is newer than this binary's.
  static absl::StatusOr<std::unique_ptr<SqliteStore>> Create(Options options);
  ~SqliteStore() override;

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
  using ConnFn = absl::FunctionRef<absl::Status(sqlite::Connection&)>;

  SqliteStore(Options options, std::unique_ptr<sqlite::Connection> writer,
              std::vector<std::unique_ptr<sqlite::Connection>> readers);

  // Runs `fn` in a BEGIN IMMEDIATE transaction on the writer connection.
  absl::Status Write(ConnFn fn);
  // Runs `fn` on a reader connection (the writer when there is no pool), outside any explicit
  // transaction: each statement sees the latest committed state.
  absl::Status Read(ConnFn fn);
  absl::Time Now() const { return options_.clock->Now(); }

  void CheckpointLoop();
  // Inserts one example into `dataset` within the caller's write transaction (the dataset's
  // example_count is the caller's to update). Returns the example's id, or "" when the
  // dataset already holds its content_hash. A caller-chosen id that is taken is
  // ALREADY_EXISTS, named by `where`.
  static absl::StatusOr<std::string> InsertExample(sqlite::Connection& c,
                                                   const std::string& dataset,
                                                   const ExampleRecord& example, absl::Time now,
                                                   const std::string& where);

  const Options options_;
  absl::Mutex writer_mu_;
  const std::unique_ptr<sqlite::Connection> writer_ ABSL_PT_GUARDED_BY(writer_mu_);
  const std::vector<std::unique_ptr<sqlite::Connection>> readers_;
  absl::Mutex pool_mu_;
  std::vector<sqlite::Connection*> free_readers_ ABSL_GUARDED_BY(pool_mu_);
  // Background checkpoints (file databases with checkpoint_interval > 0).
  std::unique_ptr<sqlite::Connection> checkpoint_conn_;
  absl::Mutex checkpoint_mu_;
  bool stopping_ ABSL_GUARDED_BY(checkpoint_mu_) = false;
  std::thread checkpointer_;
};

}  // namespace elexirion::store
