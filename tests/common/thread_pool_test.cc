#include "server/common/thread_pool.h"

#include <atomic>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace elexirion {
namespace {

TEST(ThreadPoolTest, RunsEveryTaskBeforeDestruction) {
  std::atomic<int> done{0};
  {
    ThreadPool pool(4, 0);
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(pool.TrySchedule([&] { ++done; }));
  }
  EXPECT_EQ(done.load(), 100);
}

TEST(ThreadPoolTest, RefusesBeyondTheQueueBound) {
  absl::Notification release;
  absl::Notification started;
  ThreadPool pool(1, 2);
  ASSERT_TRUE(pool.TrySchedule([&] {
    started.Notify();
    release.WaitForNotification();
  }));
  started.WaitForNotification();
  EXPECT_TRUE(pool.TrySchedule([] {}));
  EXPECT_TRUE(pool.TrySchedule([] {}));
  EXPECT_FALSE(pool.TrySchedule([] {}));
  release.Notify();
}

}  // namespace
}  // namespace elexirion
