// The LISTEN/NOTIFY source of the cross-replica relay against a real PostgreSQL server
// (started by the test): notifications sent from another connection arrive with their job
// ids, a stopped server is reported as a lost connection, and after a restart a new Connect()
// listens again.
#include "server/jobs/pg_job_notifications.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testutil/postgres_server.h"

namespace elexirion::jobs {
namespace {

using ::testing::UnorderedElementsAre;

class PgJobNotificationsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pg = testutil::PostgresServer::Start();
    ASSERT_TRUE(pg.ok()) << pg.status();
    pg_ = std::move(*pg);
    ASSERT_TRUE(pg_->CreateDatabase("notify").ok());
    PgJobNotifications::Options options;
    options.dsn = pg_->Dsn("notify");
    options.idle_check = absl::Milliseconds(200);
    source_ = std::make_unique<PgJobNotifications>(options);
  }

  void Notify(const std::string& job) {
    ASSERT_TRUE(pg_->Exec("notify", absl::StrCat("SELECT pg_notify('", store::kJobEventsChannel,
                                                 "', '", job, "')"))
                    .ok());
  }

  // Collects job ids until `want` distinct ones arrived or 20 s passed.
  std::set<std::string> Receive(size_t want) {
    std::set<std::string> got;
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (got.size() < want && absl::Now() < deadline) {
      auto ids = source_->Wait(absl::Milliseconds(100));
      EXPECT_TRUE(ids.ok()) << ids.status();
      if (!ids.ok()) break;
      got.insert(ids->begin(), ids->end());
    }
    return got;
  }

  std::unique_ptr<testutil::PostgresServer> pg_;
  std::unique_ptr<PgJobNotifications> source_;
};

TEST_F(PgJobNotificationsTest, ReceivesJobIdsNotifiedByOtherConnections) {
  ASSERT_TRUE(source_->Connect().ok());
  Notify("job-a");
  Notify("job-b");
  Notify("job-a");
  EXPECT_THAT(Receive(2), UnorderedElementsAre("job-a", "job-b"));
  ASSERT_TRUE(source_->Wait(absl::Milliseconds(200)).ok());  // the second job-a, if not yet
  // Quiet: an empty answer, not an error.
  auto quiet = source_->Wait(absl::Milliseconds(50));
  ASSERT_TRUE(quiet.ok()) << quiet.status();
  EXPECT_TRUE(quiet->empty());
}

TEST_F(PgJobNotificationsTest, ALostServerIsReportedAndAReconnectListensAgain) {
  ASSERT_TRUE(source_->Connect().ok());
  ASSERT_TRUE(pg_->Stop().ok());
  absl::Status lost;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (lost.ok() && absl::Now() < deadline)
    lost = source_->Wait(absl::Milliseconds(100)).status();
  EXPECT_TRUE(absl::IsUnavailable(lost)) << lost;
  absl::Status refused = source_->Connect();
  EXPECT_TRUE(absl::IsUnavailable(refused)) << refused;
  EXPECT_EQ(refused.message().find("password"), std::string::npos);
  ASSERT_TRUE(pg_->Restart().ok());
  ASSERT_TRUE(source_->Connect().ok());
  Notify("job-c");
  EXPECT_THAT(Receive(1), UnorderedElementsAre("job-c"));
}

}  // namespace
}  // namespace elexirion::jobs
