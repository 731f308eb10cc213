// Continuous learning on the PostgreSQL store: two schedulers on two PostgresStore instances
// (two replicas) sharing one real PostgreSQL database race over the same slots, and each
// slot still runs exactly once.
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/learning/scheduler.h"
#include "server/store/postgres_store.h"
#include "tests/learning/fake_submitter.h"
#include "tests/learning/learning_test_util.h"
#include "tests/testutil/postgres_server.h"

namespace elexirion::learning {
namespace {

using testing::AddExamples;
using testing::FakeSubmitter;
using testing::TestPolicy;

absl::Time Utc(int y, int mo, int d, int h, int mi) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, 0), absl::UTCTimeZone());
}

std::unique_ptr<store::PostgresStore> OpenPostgres(const std::string& dsn, Clock* clock) {
  store::PostgresStore::Options options;
  options.dsn = dsn;
  options.clock = clock;
  options.pool_size = 2;
  auto store = store::PostgresStore::Create(options);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

TEST(SchedulerPostgresTest, ReplicasRacingOnOneDatabaseRunEachSlotOnce) {
  auto pg = testutil::PostgresServer::Start();
  ASSERT_TRUE(pg.ok()) << pg.status();
  auto dsn = (*pg)->CreateDatabase("learning");
  ASSERT_TRUE(dsn.ok()) << dsn.status();
  FakeClock clock(Utc(2026, 11, 25, 12, 0));

  LearningConfig config;
  config.time_zone = absl::UTCTimeZone();
  config.execution_retention = absl::Hours(48);
  PipelinePolicy policy = TestPolicy("p");
  policy.weekly.enabled = false;
  config.pipelines["p"] = policy;

  constexpr int kReplicas = 3;
  std::vector<std::unique_ptr<store::PostgresStore>> stores;
  std::vector<std::unique_ptr<FakeSubmitter>> submitters;
  std::vector<std::unique_ptr<LearningScheduler>> schedulers;
  absl::Mutex usage_mu;
  int usage_reports = 0;
  for (int r = 0; r < kReplicas; ++r) {
    stores.push_back(OpenPostgres(*dsn, &clock));
    ASSERT_NE(stores.back(), nullptr);
    submitters.push_back(std::make_unique<FakeSubmitter>(stores.back().get()));
    LearningScheduler::Options options;
    options.store = stores.back().get();
    options.clock = &clock;
    options.config = config;
    options.owner = "replica-" + std::to_string(r);
    options.submit = submitters.back()->Fn();
    options.on_usage = [&](const UsageStats&) {
      absl::MutexLock lock(&usage_mu);
      ++usage_reports;
    };
    auto scheduler = LearningScheduler::Create(std::move(options));
    ASSERT_TRUE(scheduler.ok()) << scheduler.status();
    schedulers.push_back(*std::move(scheduler));
  }
  AddExamples(*stores[0], "p", 11);

  // 02:00 to 02:29:30 in 30 s steps on every replica at once: one daily slot and three
  // feedback slots.
  std::vector<absl::Time> times;
  for (int i = 0; i < 60; ++i) times.push_back(Utc(2026, 11, 26, 2, 0) + absl::Seconds(30 * i));
  std::vector<std::thread> threads;
  for (auto& scheduler : schedulers) {
    threads.emplace_back([&times, s = scheduler.get()] {
      for (absl::Time t : times) s->RunDue(t);
    });
  }
  for (auto& t : threads) t.join();

  auto jobs = stores[0]->CountJobs({});
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  EXPECT_EQ(*jobs, 1) << "the daily slot ran more than once (or never)";
  auto slot = stores[1]->GetScheduleSlot("learning/p/daily", "2026-11-26");
  ASSERT_TRUE(slot.ok()) << slot.status();
  ASSERT_TRUE(slot->has_value());
  EXPECT_THAT((*slot)->owner, ::testing::StartsWith("replica-"));
  absl::MutexLock lock(&usage_mu);
  EXPECT_EQ(usage_reports, 3) << "each 10-minute feedback slot is reported by one replica";
}

}  // namespace
}  // namespace elexirion::learning
