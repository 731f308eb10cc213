// The job workers: each claims the oldest runnable job from the store with a lease, keeps
// the lease alive with heartbeats, runs it through the JobRunner, and writes the outcome
// fenced by the lease, so a worker that lost its lease (it stalled, another replica
// recovered the job) can never write results.
//
//  - Crash recovery: a job whose worker died keeps its lease until it expires; then any
//    worker (this process after a restart, or another replica) claims it again (attempt+1)
//    and the runner resumes from the last checkpoint.
//  - Cancel: a running job sees cancel_requested on its next heartbeat; its token is
//    cancelled and the runner returns the best program so far.
//  - Shutdown: running jobs are interrupted and released back to the queue for a restart
//    or another replica.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/common/clock.h"
#include "server/jobs/event_bus.h"
#include "server/jobs/job_runner.h"
#include "server/store/store.h"

namespace elexirion::jobs {

// Thread safe.
class JobWorkerPool {
 public:
  struct Options {
    // Not owned; must outlive the pool.
    store::Store* store = nullptr;
    JobRunner* runner = nullptr;
    JobEventBus* bus = nullptr;
    Clock* clock = Clock::Real();
    // Jobs run at once in this process.
    int workers = 2;
    // A job's lease; a worker that stops heartbeating loses its job after this long.
    absl::Duration lease = absl::Seconds(30);
    // Heartbeat period; also how fast a running job notices a cancel (<= lease / 3).
    absl::Duration heartbeat = absl::Milliseconds(500);
    // Idle workers look for claimable jobs (new or with expired leases) this often.
    absl::Duration poll = absl::Milliseconds(500);
    // A job claimed more often than this (it keeps crashing its worker) fails.
    int max_attempts = 5;
    // Prefix of worker ids; default "<hostname>-<pid>".
    std::string worker_id_prefix;
  };

  static absl::StatusOr<std::unique_ptr<JobWorkerPool>> Create(Options options);
  ~JobWorkerPool();

  void Start();
  // A job was just queued: wake an idle worker now instead of at its next poll.
  void Wake();
  // Stops claiming, interrupts running jobs and releases them to the queue, joins.
  void Stop();

 private:
  class RunningJob;
  explicit JobWorkerPool(Options options) : options_(std::move(options)) {}
  void WorkerLoop(int index);
  void RunJob(const std::string& worker_id, store::JobRecord job);
  void RefreshGauges();

  Options options_;
  std::vector<std::thread> threads_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t wakeups_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<RunningJob*> running_ ABSL_GUARDED_BY(mu_);
};

// The API view of a stored program (scores from its scores_json:
// {"baseline", "validation", "train", "validation_size"}).
v1::Program ProgramProto(const store::ProgramRecord& record);

// Converts a stored event row to the API message (seq and time from the row).
absl::StatusOr<v1::ProgressEvent> EventFromRecord(const store::JobEventRecord& record);

}  // namespace elexirion::jobs
