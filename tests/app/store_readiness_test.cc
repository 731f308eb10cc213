// The store part of /readyz: one ping answers probes for a while, a failing store fails
// readiness with its error, and a store that hangs fails it within the timeout instead of
// hanging the probe. (tests/app/replicas_test.cc checks /readyz against a real PostgreSQL
// that is stopped and restarted.)
#include "server/app/store_readiness.h"

#include <atomic>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace elexirion::app {
namespace {

TEST(StoreReadinessTest, ProbesWithinTheCacheTimeShareOnePing) {
  std::atomic<int> calls{0};
  StoreReadiness::Options options;
  options.ping = [&] {
    ++calls;
    return absl::OkStatus();
  };
  options.cache_for = absl::Hours(1);
  auto readiness = *StoreReadiness::Create(options);
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(readiness->Check().ok());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(readiness->pings(), 1);
}

TEST(StoreReadinessTest, AFailingStoreFailsReadinessAndRecovers) {
  std::atomic<bool> up{false};
  StoreReadiness::Options options;
  options.ping = [&] {
    return up ? absl::OkStatus() : absl::UnavailableError("database unreachable");
  };
  options.cache_for = absl::ZeroDuration();  // every probe pings
  auto readiness = *StoreReadiness::Create(options);
  absl::Status down = readiness->Check();
  EXPECT_TRUE(absl::IsUnavailable(down)) << down;
  EXPECT_EQ(down.message(), "database unreachable");
  up = true;
  EXPECT_TRUE(readiness->Check().ok());
}

TEST(StoreReadinessTest, AHangingStoreFailsTheProbeInsteadOfHangingIt) {
  absl::Notification release;
  std::atomic<int> calls{0};
  StoreReadiness::Options options;
  options.ping = [&] {
    if (++calls == 1) release.WaitForNotification();
    return absl::OkStatus();
  };
  options.cache_for = absl::ZeroDuration();
  options.timeout = absl::Milliseconds(50);
  auto readiness = *StoreReadiness::Create(options);
  absl::Status hung = readiness->Check();
  EXPECT_TRUE(absl::IsUnavailable(hung)) << hung;
  EXPECT_NE(hung.message().find("no answer within"), std::string::npos) << hung;
  // Probes meanwhile do not pile up pings on the stuck database.
  EXPECT_FALSE(readiness->Check().ok());
  EXPECT_EQ(calls, 1);
  release.Notify();
  // The stuck ping's late answer, or a new one, makes it ready again.
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline && !readiness->Check().ok()) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_TRUE(readiness->Check().ok());
}

TEST(StoreReadinessTest, RequiresAPing) {
  EXPECT_FALSE(StoreReadiness::Create(StoreReadiness::Options()).ok());
}

}  // namespace
}  // namespace elexirion::app
