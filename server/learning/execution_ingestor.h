// Durable ingestion of execution records (RecordExecution and friends).
//
// Callers hand over validated records; the ingestor scores the ones without a quality score
// (QualityScorer of the pipeline's policy), turns the good ones into training examples
// (harvest threshold of the policy) and queues the rows. A writer thread commits whatever
// is queued in a single store transaction (group commit): concurrent callers share one
// commit instead of each paying for their own, and no gRPC thread ever waits on the database.
// A caller's `done` runs on a writer thread after its rows are durable, with one result per
// record in order; rows and their harvested examples are committed together.
//
// With Options::writers > 1 (PostgreSQL) a second commit may run while one is in flight, but
// only when enough rows wait for it (parallel_commit_rows): a light load keeps growing one
// group commit, a heavy one keeps the database's writers busy. Commits then finish in any
// order; each submission is still one transaction.
//
// Thread safe.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "server/common/clock.h"
#include "server/learning/policy.h"
#include "server/learning/quality.h"
#include "server/store/store.h"

namespace elexirion::learning {

// A record that passed API validation.
struct ExecutionInput {
  // Client idempotency key; empty = none.
  std::string record_id;
  std::string pipeline_name;
  int64_t program_version = 0;
  bool success = false;
  double duration_seconds = 0;
  // Computed when absent.
  std::optional<double> quality_score;
  // JSON objects as canonical text (what nlohmann::json::dump() writes: keys sorted, no
  // spaces); stored as they are and parsed only when the record is scored or harvested.
  std::string input_json = "{}";
  std::string output_json = "{}";
  std::string metadata_json = "{}";
  // kUnsetTime = when the server received it.
  absl::Time time = store::kUnsetTime;
};

struct IngestResult {
  // Not OK when this record alone was rejected by the store.
  absl::Status status;
  std::string id;
  double quality_score = 0;
  bool harvested = false;
  // The record_id was already stored: `id` is the earlier record, nothing new was written.
  bool duplicate = false;
};

class ExecutionIngestor {
 public:
  struct Options {
    store::Store* store = nullptr;
    // Policies (harvest threshold, dataset, quality metric) per pipeline.
    LearningConfig config;
    // Fills unset record times. nullptr = Clock::Real().
    Clock* clock = nullptr;
    // Rows per transaction at most (a larger single submission still commits alone, whole).
    size_t max_commit_rows = 5000;
    // Rows waiting at most; beyond it Ingest answers RESOURCE_EXHAUSTED (back-pressure).
    size_t max_queued_rows = 100000;
    // How long a registered pipeline's config is reused for harvest metadata.
    absl::Duration pipeline_config_ttl = absl::Seconds(30);
    // Commits in flight at most. 1 suits SQLite (one writer at a time anyway); PostgreSQL
    // takes concurrent transactions, and a second commit then overlaps the first one's round
    // trips and the database's CPU (store.postgres_ingest_writers).
    int writers = 1;
    // With a commit in flight, another starts only when at least this many rows wait:
    // below it, waiting for the running commit makes the next one larger, which costs the
    // database less than two small ones.
    size_t parallel_commit_rows = 200;
  };
  using Done = std::function<void(std::vector<IngestResult>)>;

  // INVALID_ARGUMENT when a policy's quality metric is unusable or `writers` < 1. Starts the
  // writers.
  static absl::StatusOr<std::unique_ptr<ExecutionIngestor>> Create(Options options);
  // Stop()s.
  ~ExecutionIngestor();

  // Queues `records`; `done` gets their results once committed (or the commit's error for
  // every record). Returns RESOURCE_EXHAUSTED when the queue is full and UNAVAILABLE after
  // Stop(); then `done` is never called.
  absl::Status Ingest(std::vector<ExecutionInput> records, Done done);

  // Commits what is queued, then stops the writers. Idempotent.
  void Stop();

  // The quality score a record would get (given or computed).
  double QualityOf(const ExecutionInput& record) const;

 private:
  struct Submission {
    std::vector<store::ExecutionRecordRow> rows;
    Done done;
  };

  explicit ExecutionIngestor(Options options);
  // `primary`: the first writer, which gets the work whenever it is idle.
  void WriterLoop(bool primary);
  // A writer may take the queue's head: something waits, and no commit is in flight or
  // enough rows wait for another (or the ingestor is stopping and must drain).
  bool MayCommitLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Commit(std::vector<Submission> batch);
  const QualityScorer& ScorerFor(const std::string& pipeline) const;
  nlohmann::json PipelineConfig(const std::string& pipeline, int64_t program_version);

  const Options options_;
  Clock* const clock_;
  std::unique_ptr<QualityScorer> default_scorer_;
  std::map<std::string, std::unique_ptr<QualityScorer>> scorers_;

  absl::Mutex mu_;
  std::deque<Submission> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_rows_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int commits_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  // Writers waiting for MayCommitLocked(): the primary (the first writer) on primary_cv_,
  // the others on helper_cv_. Ingest signals one only then, the primary first.
  int primary_idle_ ABSL_GUARDED_BY(mu_) = 0;
  int helpers_idle_ ABSL_GUARDED_BY(mu_) = 0;
  absl::CondVar primary_cv_;
  absl::CondVar helper_cv_;
  absl::Mutex stop_mu_;
  std::vector<std::thread> writers_ ABSL_GUARDED_BY(stop_mu_);

  struct CachedConfig {
    nlohmann::json config;
    absl::Time fetched;
  };
  absl::Mutex config_mu_;
  std::map<std::string, CachedConfig> configs_ ABSL_GUARDED_BY(config_mu_);
};

}  // namespace elexirion::learning
