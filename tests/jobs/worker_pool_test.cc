// The job workers over a real SQLite store with scripted runners: events, programs, cancel,
// lease fencing, crash recovery with checkpoints, shutdown release.
#include "server/jobs/worker_pool.h"

#include <atomic>
#include <memory>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/store/sqlite_store.h"
#include "tests/testutil/temp_dir.h"

namespace elexirion::jobs {
namespace {

using ::testing::ElementsAre;

// Runs `body` as the job's work.
class FunctionRunner : public JobRunner {
 public:
  explicit FunctionRunner(std::function<absl::StatusOr<RunOutcome>(JobContext&)> body)
      : body_(std::move(body)) {}
  absl::StatusOr<RunOutcome> Run(JobContext& context) override { return body_(context); }

 private:
  std::function<absl::StatusOr<RunOutcome>(JobContext&)> body_;
};

RunOutcome Succeeded(double score) {
  RunOutcome outcome;
  store::ProgramRecord program;
  program.pipeline_name = "p";
  program.optimizer = "bootstrap_few_shot";
  program.dspy_json = "{}";
  program.scores_json = "{\"validation\": " + std::to_string(score) + "}";
  outcome.program = program;
  outcome.promote = true;
  outcome.summary.set_best_score(score);
  return outcome;
}

class WorkerPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::SqliteStore::Options options;
    options.path = dir_.File("jobs.sqlite");
    store_ = *store::SqliteStore::Create(options);
  }

  std::unique_ptr<JobWorkerPool> Pool(JobRunner* runner, Clock* clock = Clock::Real(),
                                      absl::Duration lease = absl::Seconds(3)) {
    JobWorkerPool::Options options;
    options.store = store_.get();
    options.runner = runner;
    options.bus = &bus_;
    options.clock = clock;
    options.workers = 1;
    options.lease = lease;
    options.heartbeat = absl::Milliseconds(50);
    options.poll = absl::Milliseconds(20);
    auto pool = JobWorkerPool::Create(options);
    EXPECT_TRUE(pool.ok()) << pool.status();
    return std::move(*pool);
  }

  std::string Submit() {
    v1::OptimizeModuleRequest request;
    request.set_program_name("prog");
    store::JobRecord job;
    job.program_name = "prog";
    job.optimizer = "bootstrap_few_shot";
    job.request = request.SerializeAsString();
    return store_->CreateJob(job)->id;
  }

  store::JobRecord WaitForEnd(const std::string& id, absl::Duration timeout = absl::Seconds(20)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      auto job = store_->GetJob(id);
      if (job.ok() &&
          (job->state == store::JobState::kSucceeded || job->state == store::JobState::kFailed ||
           job->state == store::JobState::kCancelled)) {
        return *job;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    ADD_FAILURE() << "job did not end";
    return *store_->GetJob(id);
  }

  std::vector<std::string> EventKinds(const std::string& id) {
    std::vector<std::string> kinds;
    auto events = store_->ListJobEvents(id, 0, 1000);
    EXPECT_TRUE(events.ok());
    if (!events.ok()) return kinds;
    for (const auto& e : *events) kinds.push_back(e.kind);
    return kinds;
  }

  testutil::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  JobEventBus bus_;
};

TEST_F(WorkerPoolTest, RunsAJobSavesItsProgramAndStreamsEvents) {
  FunctionRunner runner([](JobContext& ctx) -> absl::StatusOr<RunOutcome> {
    v1::ProgressEvent trial;
    trial.mutable_trial_finished()->set_trial(1);
    trial.mutable_trial_finished()->set_score(75);
    EXPECT_TRUE(ctx.Emit(trial).ok());
    EXPECT_FALSE(ctx.CurrentProduction().has_value());
    return Succeeded(75);
  });
  std::vector<int64_t> live;
  absl::Mutex mu;
  const std::string id = Submit();
  int64_t token = bus_.Subscribe(id, [&](absl::Span<const JobEventBus::EventPtr> events) {
    absl::MutexLock lock(&mu);
    for (const auto& e : events) live.push_back(e->seq());
  });
  auto pool = Pool(&runner);
  pool->Start();
  store::JobRecord job = WaitForEnd(id);
  pool->Stop();
  bus_.Flush();
  bus_.Unsubscribe(token);
  EXPECT_EQ(job.state, store::JobState::kSucceeded);
  EXPECT_EQ(job.attempt, 1);
  EXPECT_THAT(EventKinds(id),
              ElementsAre("state_changed", "trial_finished", "summary", "state_changed"));
  {
    absl::MutexLock lock(&mu);
    EXPECT_THAT(live, ElementsAre(1, 2, 3, 4));
  }
  v1::Program result;
  ASSERT_TRUE(result.ParseFromString(job.result));
  EXPECT_EQ(result.name(), "prog");
  EXPECT_EQ(result.version(), 1);
  EXPECT_TRUE(result.production());
  EXPECT_DOUBLE_EQ(result.scores().validation(), 75);
  EXPECT_EQ(store_->GetProductionProgram("prog")->job_id, id);
}

TEST_F(WorkerPoolTest, CancelStopsARunningJobAndKeepsTheBestProgram) {
  absl::Notification running;
  FunctionRunner runner([&](JobContext& ctx) -> absl::StatusOr<RunOutcome> {
    running.Notify();
    while (!ctx.cancel().IsCancelled()) absl::SleepFor(absl::Milliseconds(5));
    RunOutcome outcome = Succeeded(40);
    outcome.state = store::JobState::kCancelled;
    outcome.end_reason = v1::END_REASON_CANCELLED;
    return outcome;
  });
  const std::string id = Submit();
  auto pool = Pool(&runner);
  pool->Start();
  running.WaitForNotification();
  const absl::Time cancelled_at = absl::Now();
  ASSERT_TRUE(store_->RequestCancel(id, absl::Now()).ok());
  store::JobRecord job = WaitForEnd(id);
  EXPECT_LT(absl::Now() - cancelled_at, absl::Seconds(1));
  pool->Stop();
  EXPECT_EQ(job.state, store::JobState::kCancelled);
  EXPECT_EQ(job.end_reason, "END_REASON_CANCELLED");
  v1::Program result;
  ASSERT_TRUE(result.ParseFromString(job.result));
  EXPECT_EQ(result.version(), 1);
}

TEST_F(WorkerPoolTest, QueuedCancelledJobNeverStarts) {
  std::atomic<int> runs{0};
  FunctionRunner runner([&](JobContext&) -> absl::StatusOr<RunOutcome> {
    ++runs;
    return Succeeded(1);
  });
  const std::string id = Submit();
  ASSERT_TRUE(store_->RequestCancel(id, absl::Now()).ok());
  auto pool = Pool(&runner);
  pool->Start();
  absl::SleepFor(absl::Milliseconds(200));
  pool->Stop();
  EXPECT_EQ(runs.load(), 0);
  EXPECT_EQ(store_->GetJob(id)->state, store::JobState::kCancelled);
}

TEST_F(WorkerPoolTest, RunnerErrorFailsTheJob) {
  FunctionRunner runner([](JobContext&) -> absl::StatusOr<RunOutcome> {
    return absl::InvalidArgumentError("trainset: no usable examples");
  });
  const std::string id = Submit();
  auto pool = Pool(&runner);
  pool->Start();
  store::JobRecord job = WaitForEnd(id);
  pool->Stop();
  EXPECT_EQ(job.state, store::JobState::kFailed);
  EXPECT_EQ(job.error, "trainset: no usable examples");
}

// A worker whose lease expired (it stalled) loses the job to another worker and can write
// nothing afterwards; the job ends exactly once, resumed from the checkpoint.
TEST_F(WorkerPoolTest, LostLeaseIsFencedAndTheJobResumesFromItsCheckpoint) {
  absl::Notification first_checkpointed, release_first;
  std::atomic<bool> first_write_after_loss_failed{false};
  FunctionRunner first([&](JobContext& ctx) -> absl::StatusOr<RunOutcome> {
    v1::JobProgress progress;
    progress.set_trials_done(1);
    EXPECT_TRUE(ctx.Checkpoint("trial-1-done", progress).ok());
    first_checkpointed.Notify();
    release_first.WaitForNotification();
    // The lease is gone by now: every write is refused.
    v1::ProgressEvent event;
    event.mutable_new_best()->set_score(99);
    first_write_after_loss_failed = !ctx.Emit(event).ok();
    return Succeeded(99);
  });
  std::string seen_checkpoint;
  FunctionRunner second([&](JobContext& ctx) -> absl::StatusOr<RunOutcome> {
    seen_checkpoint = ctx.checkpoint();
    return Succeeded(80);
  });
  const std::string id = Submit();
  auto pool1 = Pool(&first, Clock::Real(), absl::Seconds(1));
  pool1->Start();
  first_checkpointed.WaitForNotification();
  // Simulate the first worker stalling: its heartbeats stop reaching the store, so its lease
  // expires. A second worker, whose clock is past the lease, recovers the job.
  FakeClock later(absl::Now() + absl::Seconds(120));
  auto pool2 = Pool(&second, &later, absl::Seconds(1));
  pool2->Start();
  store::JobRecord job = WaitForEnd(id);
  release_first.Notify();
  pool1->Stop();
  pool2->Stop();
  EXPECT_EQ(job.state, store::JobState::kSucceeded);
  EXPECT_EQ(job.attempt, 2);
  EXPECT_EQ(seen_checkpoint, "trial-1-done");
  EXPECT_TRUE(first_write_after_loss_failed.load());
  // Exactly one terminal event, one program version.
  int terminal = 0;
  auto events = store_->ListJobEvents(id, 0, 1000);
  ASSERT_TRUE(events.ok());
  for (const auto& e : *events) {
    auto event = EventFromRecord(e);
    ASSERT_TRUE(event.ok());
    if (event->has_state_changed() && event->state_changed().state() == v1::JOB_STATE_SUCCEEDED) {
      ++terminal;
    }
  }
  EXPECT_EQ(terminal, 1);
  EXPECT_EQ(store_->GetLatestProgram("prog")->version, 1);
}

TEST_F(WorkerPoolTest, ShutdownReleasesRunningJobsToTheQueue) {
  absl::Notification running;
  FunctionRunner runner([&](JobContext& ctx) -> absl::StatusOr<RunOutcome> {
    running.Notify();
    while (!ctx.cancel().IsCancelled()) absl::SleepFor(absl::Milliseconds(5));
    return absl::CancelledError("interrupted");
  });
  const std::string id = Submit();
  auto pool = Pool(&runner);
  pool->Start();
  running.WaitForNotification();
  pool->Stop();
  store::JobRecord job = *store_->GetJob(id);
  EXPECT_EQ(job.state, store::JobState::kQueued);
  EXPECT_EQ(job.attempt, 1);
}

}  // namespace
}  // namespace elexirion::jobs
