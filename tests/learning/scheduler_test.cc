// LearningScheduler on a fake clock over real SQLite files: daily, weekly and feedback slots,
// exactly once per slot across replicas and restarts, retry versus permanent failures.
#include "server/learning/scheduler.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/metric_family.h"
#include "server/metrics/registry.h"
#include "tests/learning/fake_submitter.h"
#include "tests/learning/learning_test_util.h"
#include "tests/testutil/temp_dir.h"

namespace elexirion::learning {
namespace {

using testing::AddExamples;
using testing::AddExecutions;
using testing::FakeSubmitter;
using ::testing::HasSubstr;
using testing::OpenStore;
using ::testing::StartsWith;
using testing::TestPolicy;

absl::Time Utc(int y, int mo, int d, int h, int mi, int s = 0) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::UTCTimeZone());
}

double RunsCounter(const std::string& schedule, const std::string& outcome) {
  for (const auto& family : metrics::DefaultRegistry()->Collect()) {
    if (family.name != "elexirion_learning_runs_total") continue;
    for (const auto& metric : family.metric) {
      std::string s, o;
      for (const auto& label : metric.label) {
        if (label.name == "schedule") s = label.value;
        if (label.name == "outcome") o = label.value;
      }
      if (s == schedule && o == outcome) return metric.counter.value;
    }
  }
  return 0;
}

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = OpenStore(path_, &clock_);
    ASSERT_NE(store_, nullptr);
    config_.time_zone = absl::UTCTimeZone();
    config_.execution_retention = absl::Hours(48);
    PipelinePolicy policy = TestPolicy("p");
    policy.weekly.enabled = false;
    config_.pipelines["p"] = policy;
  }

  std::unique_ptr<LearningScheduler> Make(store::Store* store, FakeSubmitter* submitter,
                                          const std::string& owner = "replica-a") {
    LearningScheduler::Options options;
    options.store = store;
    options.clock = &clock_;
    options.config = config_;
    options.owner = owner;
    options.submit = submitter->Fn();
    options.on_usage = [this](const UsageStats& usage) {
      absl::MutexLock lock(&usage_mu_);
      usages_.push_back(usage);
    };
    auto scheduler = LearningScheduler::Create(std::move(options));
    EXPECT_TRUE(scheduler.ok()) << scheduler.status();
    return scheduler.ok() ? std::move(*scheduler) : nullptr;
  }

  // Sets the fake clock and runs one tick.
  void TickAt(LearningScheduler& scheduler, absl::Time t) {
    clock_.Set(t);
    scheduler.RunDue(t);
  }

  std::optional<store::ScheduleSlotRecord> Slot(const std::string& schedule,
                                                const std::string& key) {
    auto slot = store_->GetScheduleSlot(schedule, key);
    EXPECT_TRUE(slot.ok()) << slot.status();
    return slot.ok() ? *slot : std::nullopt;
  }

  int64_t Jobs() {
    auto count = store_->CountJobs({});
    EXPECT_TRUE(count.ok()) << count.status();
    return count.ok() ? *count : -1;
  }

  size_t UsageReports() {
    absl::MutexLock lock(&usage_mu_);
    return usages_.size();
  }

  testutil::TempDir dir_;
  const std::string path_ = dir_.File("learning.db");
  FakeClock clock_{Utc(2026, 11, 25, 12, 0)};
  std::unique_ptr<store::SqliteStore> store_;
  LearningConfig config_;
  absl::Mutex usage_mu_;
  std::vector<UsageStats> usages_ ABSL_GUARDED_BY(usage_mu_);
};

TEST_F(SchedulerTest, DailyFiresOnceAtTwoAndAgainTheNextDay) {
  FakeSubmitter submitter(store_.get());
  auto scheduler = Make(store_.get(), &submitter);
  ASSERT_NE(scheduler, nullptr);
  clock_.Set(Utc(2026, 11, 25, 12, 0));
  AddExamples(*store_, "p", 11);  // should_optimize: more than 10 new examples
  const double submitted_before = RunsCounter("daily", "submitted");

  TickAt(*scheduler, Utc(2026, 11, 26, 1, 59));
  EXPECT_EQ(submitter.requests().size(), 0u);
  EXPECT_FALSE(Slot("learning/p/daily", "2026-11-26").has_value());

  TickAt(*scheduler, Utc(2026, 11, 26, 2, 0));
  ASSERT_EQ(submitter.requests().size(), 1u);
  const v1::OptimizeModuleRequest request = submitter.requests()[0];
  EXPECT_EQ(request.request_id(), "learning:p:daily:2026-11-26");
  EXPECT_EQ(request.pipeline().name(), "p");
  EXPECT_EQ(request.program_name(), "p");
  EXPECT_EQ(request.trainset().dataset(), "p");
  EXPECT_EQ(request.metric().exact_match().field(), "answer");
  EXPECT_TRUE(request.optimizer().has_bootstrap_few_shot());
  // Promotion only on improvement is the job's rule; the scheduler must ask for it.
  ASSERT_TRUE(request.has_promote_if_better());
  EXPECT_TRUE(request.promote_if_better());
  auto slot = Slot("learning/p/daily", "2026-11-26");
  ASSERT_TRUE(slot.has_value());
  EXPECT_EQ(slot->owner, "replica-a");
  EXPECT_THAT(slot->outcome, StartsWith("submitted: job "));
  EXPECT_THAT(slot->outcome, HasSubstr("11 new examples"));
  EXPECT_EQ(RunsCounter("daily", "submitted"), submitted_before + 1);

  // Every 30 s for the rest of the day and the next night: nothing new.
  for (absl::Time t = Utc(2026, 11, 26, 2, 0, 30); t < Utc(2026, 11, 27, 2, 0);
       t += absl::Seconds(30)) {
    TickAt(*scheduler, t);
  }
  EXPECT_EQ(submitter.requests().size(), 1u);
  EXPECT_EQ(Jobs(), 1);

  TickAt(*scheduler, Utc(2026, 11, 27, 2, 0));
  ASSERT_EQ(submitter.requests().size(), 2u);
  EXPECT_EQ(submitter.requests()[1].request_id(), "learning:p:daily:2026-11-27");
  EXPECT_EQ(Jobs(), 2);
}

TEST_F(SchedulerTest, DailySkippedWhenHealthyRecordsWhy) {
  FakeSubmitter submitter(store_.get());
  auto scheduler = Make(store_.get(), &submitter);
  AddExecutions(*store_, "p", 99, 1, Utc(2026, 11, 25, 20, 0));
  AddExamples(*store_, "p", 10);
  const double skipped_before = RunsCounter("daily", "skipped");

  TickAt(*scheduler, Utc(2026, 11, 26, 2, 0));
  TickAt(*scheduler, Utc(2026, 11, 26, 2, 1));
  EXPECT_EQ(submitter.requests().size(), 0u);
  auto slot = Slot("learning/p/daily", "2026-11-26");
  ASSERT_TRUE(slot.has_value());
  EXPECT_THAT(slot->outcome, StartsWith("skipped: healthy"));
  EXPECT_THAT(slot->outcome, HasSubstr("10 new examples"));
  EXPECT_EQ(RunsCounter("daily", "skipped"), skipped_before + 1);
}

TEST_F(SchedulerTest, DailyBelowBaselineSubmits) {
  FakeSubmitter submitter(store_.get());
  auto scheduler = Make(store_.get(), &submitter);
  AddExecutions(*store_, "p", 80, 20, Utc(2026, 11, 25, 20, 0));
  TickAt(*scheduler, Utc(2026, 11, 26, 2, 0));
  ASSERT_EQ(submitter.requests().size(), 1u);
  EXPECT_THAT(Slot("learning/p/daily", "2026-11-26")->outcome, HasSubstr("below baseline"));
}

TEST_F(SchedulerTest, WeeklyRunsOnItsWeekdayOnlyAndUpdatesTheBaseline) {
  config_.pipelines["p"].daily.enabled = false;
  config_.pipelines["p"].weekly.enabled = true;
  FakeSubmitter submitter(store_.get());
  auto scheduler = Make(store_.get(), &submitter);
  AddExamples(*store_, "p", 5);
  // Within the week before Sunday 2026-11-22 03:00; one execution older than the week.
  AddExecutions(*store_, "p", 90, 10, Utc(2026, 11, 20, 10, 0));
  AddExecutions(*store_, "p", 0, 50, Utc(2026, 11, 14, 10, 0));

  // Thursday through Sunday 02:59: nothing.
  for (absl::Time t = Utc(2026, 11, 19, 0, 0); t < Utc(2026, 11, 22, 3, 0);
       t += absl::Minutes(10)) {
    TickAt(*scheduler, t);
  }
  EXPECT_EQ(submitter.requests().size(), 0u);
  EXPECT_TRUE(absl::IsNotFound(store_->GetPipelineBaseline("p").status()));

  TickAt(*scheduler, Utc(2026, 11, 22, 3, 0));
  ASSERT_EQ(submitter.requests().size(), 1u);
  EXPECT_EQ(submitter.requests()[0].request_id(), "learning:p:weekly:2026-11-22");
  EXPECT_TRUE(submitter.requests()[0].optimizer().has_miprov2());
  EXPECT_TRUE(submitter.requests()[0].promote_if_better());
  auto baseline = store_->GetPipelineBaseline("p");
  ASSERT_TRUE(baseline.ok()) << baseline.status();
  EXPECT_DOUBLE_EQ(baseline->success_rate, 0.9);
  EXPECT_EQ(baseline->executions, 100);
  EXPECT_THAT(Slot("learning/p/weekly", "2026-11-22")->outcome, StartsWith("submitted: job "));

  // The rest of the week, hourly: nothing; the next Sunday: the next run.
  for (absl::Time t = Utc(2026, 11, 22, 4, 0); t < Utc(2026, 11, 29, 3, 0); t += absl::Hours(1)) {
    TickAt(*scheduler, t);
  }
  EXPECT_EQ(submitter.requests().size(), 1u);
  TickAt(*scheduler, Utc(2026, 11, 29, 3, 0));
  ASSERT_EQ(submitter.requests().size(), 2u);
  EXPECT_EQ(submitter.requests()[1].request_id(), "learning:p:weekly:2026-11-29");
  // That week had no executions: the baseline stays.
  EXPECT_DOUBLE_EQ(store_->GetPipelineBaseline("p")->success_rate, 0.9);
  EXPECT_EQ(Jobs(), 2);
}

TEST_F(SchedulerTest, WeeklySkippedWithTooFewExamples) {
  config_.pipelines["p"].daily.enabled = false;
  config_.pipelines["p"].weekly.enabled = true;
  FakeSubmitter submitter(store_.get());
  auto scheduler = Make(store_.get(), &submitter);
  TickAt(*scheduler, Utc(2026, 11, 22, 3, 0));
  EXPECT_THAT(Slot("learning/p/weekly", "2026-11-22")->outcome,
              StartsWith("skipped: dataset \"p\" does not exist yet"));
  AddExamples(*store_, "p", 1);
  TickAt(*scheduler, Utc(2026, 11, 29, 3, 0));
  EXPECT_THAT(Slot("learning/p/weekly", "2026-11-29")->outcome,
              StartsWith("skipped: dataset \"p\" has 1 examples"));
  EXPECT_EQ(submitter.requests().size(), 0u);
}

TEST_F(SchedulerTest, FeedbackReportsUsageOncePerTenMinuteSlotAndPrunes) {
  config_.pipelines["p"].daily.enabled = false;
  FakeSubmitter submitter(store_.get());
  auto scheduler = Make(store_.get(), &submitter);
  AddExecutions(*store_, "p", 3, 1, Utc(2026, 11, 25, 11, 0));
  AddExecutions(*store_, "p", 5, 0, Utc(2026, 11, 22, 11, 0));  // older than the retention

  TickAt(*scheduler, Utc(2026, 11, 25, 12, 0));
  ASSERT_EQ(UsageReports(), 1u);
  {
    absl::MutexLock lock(&usage_mu_);
    EXPECT_EQ(usages_[0].pipeline_name, "p");
    EXPECT_EQ(usages_[0].summary.executions, 4);
    EXPECT_DOUBLE_EQ(usages_[0].success_rate, 0.75);
    EXPECT_EQ(usages_[0].until, Utc(2026, 11, 25, 12, 0));
  }
  auto old = store_->ListExecutions("p", absl::InfinitePast(), Utc(2026, 11, 24, 0, 0), 0);
  ASSERT_TRUE(old.ok());
  EXPECT_TRUE(old->empty()) << "executions older than the retention are pruned";
  auto kept = store_->ListExecutions("p", absl::InfinitePast(), absl::InfiniteFuture(), 0);
  EXPECT_EQ(kept->size(), 4u);

  for (int i = 1; i < 20; ++i) TickAt(*scheduler, Utc(2026, 11, 25, 12, 0) + absl::Seconds(30 * i));
  EXPECT_EQ(UsageReports(), 1u);
  TickAt(*scheduler, Utc(2026, 11, 25, 12, 10));
  EXPECT_EQ(UsageReports(), 2u);
  // Six slots an hour.
  for (absl::Time t = Utc(2026, 11, 25, 12, 10, 30); t <= Utc(2026, 11, 25, 13, 10);
       t += absl::Seconds(30)) {
    TickAt(*scheduler, t);
  }
  EXPECT_EQ(UsageReports(), 8u);
  EXPECT_EQ(submitter.requests().size(), 0u);
}

TEST_F(SchedulerTest, TwoReplicasRacingRunEachSlotOnce) {
  AddExamples(*store_, "p", 11);
  auto store_b = OpenStore(path_, &clock_);
  ASSERT_NE(store_b, nullptr);
  FakeSubmitter submitter_a(store_.get());
  FakeSubmitter submitter_b(store_b.get());
  auto a = Make(store_.get(), &submitter_a, "replica-a");
  auto b = Make(store_b.get(), &submitter_b, "replica-b");

  // 02:00 to 02:29:30 in 30 s steps: one daily slot and three feedback slots.
  std::vector<absl::Time> times;
  for (int i = 0; i < 60; ++i) times.push_back(Utc(2026, 11, 26, 2, 0) + absl::Seconds(30 * i));
  auto run = [&times](LearningScheduler* scheduler) {
    for (absl::Time t : times) scheduler->RunDue(t);
  };
  std::thread ta(run, a.get());
  std::thread tb(run, b.get());
  ta.join();
  tb.join();

  EXPECT_EQ(Jobs(), 1);
  EXPECT_GE(submitter_a.requests().size() + submitter_b.requests().size(), 1u);
  auto slot = Slot("learning/p/daily", "2026-11-26");
  ASSERT_TRUE(slot.has_value());
  EXPECT_THAT(slot->owner, ::testing::AnyOf("replica-a", "replica-b"));
  EXPECT_EQ(UsageReports(), 3u);
}

TEST_F(SchedulerTest, RestartBetweenSubmitAndClaimDoesNotRunTwice) {
  AddExamples(*store_, "p", 11);
  const absl::Time two = Utc(2026, 11, 26, 2, 0);
  std::string first_job;
  {
    // Replica A creates the job, then "crashes" before it can claim the slot.
    FakeSubmitter submitter_a(store_.get());
    submitter_a.FailWith(absl::UnavailableError("crashed"), /*after_create=*/true);
    auto a = Make(store_.get(), &submitter_a, "replica-a");
    TickAt(*a, two);
    ASSERT_EQ(submitter_a.requests().size(), 1u);
    EXPECT_EQ(Jobs(), 1);
    EXPECT_FALSE(Slot("learning/p/daily", "2026-11-26").has_value());
    auto page = store_->ListJobs({}, 10, "");
    ASSERT_TRUE(page.ok());
    first_job = page->jobs.at(0).id;
  }
  // The restarted process (a new store connection, a new scheduler) at the same time.
  auto store_b = OpenStore(path_, &clock_);
  FakeSubmitter submitter_b(store_b.get());
  auto b = Make(store_b.get(), &submitter_b, "replica-b");
  TickAt(*b, two + absl::Seconds(30));
  EXPECT_EQ(submitter_b.requests().size(), 1u);
  EXPECT_EQ(Jobs(), 1);
  auto slot = Slot("learning/p/daily", "2026-11-26");
  ASSERT_TRUE(slot.has_value());
  EXPECT_EQ(slot->owner, "replica-b");
  EXPECT_THAT(slot->outcome, StartsWith("submitted: job " + first_job));
  TickAt(*b, two + absl::Minutes(5));
  EXPECT_EQ(submitter_b.requests().size(), 1u);
}

TEST_F(SchedulerTest, RetryableErrorLeavesTheSlotOpenPermanentOneClosesIt) {
  AddExamples(*store_, "p", 11);
  FakeSubmitter submitter(store_.get());
  auto scheduler = Make(store_.get(), &submitter);
  const double retry_before = RunsCounter("daily", "retry");
  const double failed_before = RunsCounter("daily", "failed");

  submitter.FailWith(absl::ResourceExhaustedError("job backlog full"));
  TickAt(*scheduler, Utc(2026, 11, 26, 2, 0));
  EXPECT_FALSE(Slot("learning/p/daily", "2026-11-26").has_value());
  EXPECT_EQ(RunsCounter("daily", "retry"), retry_before + 1);
  submitter.FailWith(absl::OkStatus());
  TickAt(*scheduler, Utc(2026, 11, 26, 2, 0, 30));
  EXPECT_EQ(submitter.requests().size(), 2u);
  EXPECT_THAT(Slot("learning/p/daily", "2026-11-26")->outcome, StartsWith("submitted: job "));

  submitter.FailWith(absl::NotFoundError("pipeline \"p\" is not registered"));
  TickAt(*scheduler, Utc(2026, 11, 27, 2, 0));
  EXPECT_EQ(submitter.requests().size(), 3u);
  EXPECT_THAT(Slot("learning/p/daily", "2026-11-27")->outcome,
              StartsWith("failed: pipeline \"p\" is not registered"));
  EXPECT_EQ(RunsCounter("daily", "failed"), failed_before + 1);
  TickAt(*scheduler, Utc(2026, 11, 27, 2, 0, 30));
  EXPECT_EQ(submitter.requests().size(), 3u) << "a failed slot is not retried";
}

TEST_F(SchedulerTest, DailyFollowsTheConfiguredTimeZone) {
  ASSERT_TRUE(absl::LoadTimeZone("America/New_York", &config_.time_zone));
  AddExamples(*store_, "p", 11);
  FakeSubmitter submitter(store_.get());
  auto scheduler = Make(store_.get(), &submitter);
  // 02:00 in New York is 07:00 UTC in November; 05:30 UTC is 00:30 there.
  TickAt(*scheduler, Utc(2026, 11, 26, 5, 30));
  TickAt(*scheduler, Utc(2026, 11, 26, 6, 59));
  EXPECT_EQ(submitter.requests().size(), 0u);
  TickAt(*scheduler, Utc(2026, 11, 26, 7, 0));
  ASSERT_EQ(submitter.requests().size(), 1u);
  EXPECT_EQ(submitter.requests()[0].request_id(), "learning:p:daily:2026-11-26");
  // Past midnight UTC it is still the 26th in New York.
  TickAt(*scheduler, Utc(2026, 11, 27, 3, 0));
  TickAt(*scheduler, Utc(2026, 11, 27, 6, 59));
  EXPECT_EQ(submitter.requests().size(), 1u);
  TickAt(*scheduler, Utc(2026, 11, 27, 7, 0));
  ASSERT_EQ(submitter.requests().size(), 2u);
  EXPECT_EQ(submitter.requests()[1].request_id(), "learning:p:daily:2026-11-27");
}

TEST_F(SchedulerTest, StartRunsInTheBackgroundAndStopIsPrompt) {
  config_.tick = absl::Hours(1);  // Stop() must interrupt the wait, not sit it out
  FakeSubmitter submitter(store_.get());
  absl::Notification reported;
  LearningScheduler::Options options;
  options.store = store_.get();
  options.clock = &clock_;
  options.config = config_;
  options.owner = "replica-a";
  options.submit = submitter.Fn();
  options.on_usage = [&reported](const UsageStats&) {
    if (!reported.HasBeenNotified()) reported.Notify();
  };
  auto scheduler = LearningScheduler::Create(std::move(options));
  ASSERT_TRUE(scheduler.ok()) << scheduler.status();
  ASSERT_TRUE((*scheduler)->Start().ok());
  EXPECT_EQ((*scheduler)->Start().code(), absl::StatusCode::kFailedPrecondition);
  reported.WaitForNotification();
  (*scheduler)->Stop();
  (*scheduler)->Stop();
}

TEST_F(SchedulerTest, CreateRejectsMissingParts) {
  LearningScheduler::Options options;
  EXPECT_EQ(LearningScheduler::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.store = store_.get();
  options.owner = "a";
  EXPECT_EQ(LearningScheduler::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace elexirion::learning
