// The job event bus: publishers never wait on watchers, each watcher gets a job's events once
// and in order, and memory answers catch-ups for recent events.
#include "server/jobs/event_bus.h"

#include <algorithm>
#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace elexirion::jobs {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

v1::ProgressEvent Event(const std::string& job, int64_t seq) {
  v1::ProgressEvent event;
  event.set_job_id(job);
  event.set_seq(seq);
  event.mutable_trial_started()->set_trial(static_cast<int32_t>(seq));
  return event;
}

// Records the seqs it is handed.
class Recorder {
 public:
  JobEventBus::Callback callback() {
    return [this](absl::Span<const JobEventBus::EventPtr> events) {
      absl::MutexLock lock(&mu_);
      for (const auto& e : events) seqs_.push_back(e->seq());
    };
  }
  std::vector<int64_t> seqs() const {
    absl::MutexLock lock(&mu_);
    return seqs_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<int64_t> seqs_;
};

// Before the dispatch thread, Publish ran every watcher's callback itself: a watcher that was
// slow to take an event held up the job that published it (and every event after it). Here
// the first callback cannot finish until the publisher has published the next event.
TEST(JobEventBusTest, PublisherDoesNotWaitForAWatcher) {
  JobEventBus bus;
  absl::Notification second_published;
  std::atomic<bool> released{false};
  int64_t token = bus.Subscribe("job", [&](absl::Span<const JobEventBus::EventPtr> events) {
    if (events.front()->seq() == 1) {
      released = second_published.WaitForNotificationWithTimeout(absl::Seconds(20));
    }
  });
  bus.Publish(Event("job", 1));
  bus.Publish(Event("job", 2));
  second_published.Notify();
  bus.Flush();
  bus.Unsubscribe(token);
  EXPECT_TRUE(released) << "the callback for event 1 ran on the publisher's thread";
}

TEST(JobEventBusTest, EachWatcherGetsEveryEventOnceInOrder) {
  JobEventBus bus;
  Recorder a, b, other;
  int64_t ta = bus.Subscribe("job", a.callback());
  int64_t tb = bus.Subscribe("job", b.callback());
  int64_t to = bus.Subscribe("other", other.callback());
  // The local worker and the cross-replica relay may both publish an event.
  for (int64_t seq : {1, 2, 2, 3, 1, 4, 3, 5}) bus.Publish(Event("job", seq));
  bus.Flush();
  EXPECT_THAT(a.seqs(), ElementsAre(1, 2, 3, 4, 5));
  EXPECT_THAT(b.seqs(), ElementsAre(1, 2, 3, 4, 5));
  EXPECT_THAT(other.seqs(), IsEmpty());
  EXPECT_EQ(bus.LastPublishedSeq("job"), 5);
  EXPECT_EQ(bus.LastPublishedSeq("other"), 0);
  EXPECT_EQ(bus.subscribers(), 3);
  bus.Unsubscribe(ta);
  bus.Unsubscribe(tb);
  bus.Unsubscribe(to);
  EXPECT_EQ(bus.subscribers(), 0);
  EXPECT_THAT(bus.WatchedJobs(), IsEmpty());
}

v1::ProgressEvent Terminal(const std::string& job, int64_t seq) {
  v1::ProgressEvent event;
  event.set_job_id(job);
  event.set_seq(seq);
  event.mutable_state_changed()->set_state(v1::JOB_STATE_SUCCEEDED);
  return event;
}

// Watchers who join a running job replay it from memory: its events are kept while nobody
// watches, but only handed to watchers who were there when they were published.
TEST(JobEventBusTest, UnwatchedRunningJobsKeepTheirEventsForLaterWatchers) {
  JobEventBus bus;
  bus.Publish(Event("job", 1));
  bus.Publish(Event("job", 2));
  EXPECT_FALSE(bus.IsWatched("job"));
  EXPECT_THAT(bus.WatchedJobs(), IsEmpty());
  bool complete = false;
  auto recent = bus.Recent("job", 0, 10, &complete);
  EXPECT_TRUE(complete);
  ASSERT_EQ(recent.size(), 2u);
  EXPECT_EQ(recent.front()->seq(), 1);

  Recorder r;
  int64_t token = bus.Subscribe("job", r.callback());
  EXPECT_TRUE(bus.IsWatched("job"));
  bus.Publish(Event("job", 3));
  bus.Flush();
  EXPECT_THAT(r.seqs(), ElementsAre(3));
  bus.Unsubscribe(token);
  EXPECT_FALSE(bus.IsWatched("job"));
  // Still running: the next watcher finds all of it in memory.
  recent = bus.Recent("job", 0, 10, &complete);
  EXPECT_TRUE(complete);
  EXPECT_EQ(recent.size(), 3u);
  EXPECT_EQ(bus.LastPublishedSeq("job"), 3);

  // The terminal event ends an unwatched job's memory (watchers of ended jobs read the store).
  bus.Publish(Terminal("job", 4));
  EXPECT_THAT(bus.Recent("job", 0, 10, &complete), IsEmpty());
  EXPECT_FALSE(complete);
  EXPECT_EQ(bus.LastPublishedSeq("job"), 0);
  // An event without a sequence number is not kept.
  bus.Publish(Event("none", 0));
  EXPECT_EQ(bus.LastPublishedSeq("none"), 0);
}

TEST(JobEventBusTest, WatchedJobsKeepTheirEventsUntilTheLastWatcherOfTheEndedJobLeaves) {
  JobEventBus bus;
  Recorder r;
  int64_t token = bus.Subscribe("job", r.callback());
  bus.Publish(Event("job", 1));
  bus.Publish(Terminal("job", 2));
  bus.Flush();
  EXPECT_THAT(r.seqs(), ElementsAre(1, 2));
  bool complete = false;
  EXPECT_EQ(bus.Recent("job", 0, 10, &complete).size(), 2u);
  bus.Unsubscribe(token);
  EXPECT_THAT(bus.Recent("job", 0, 10, &complete), IsEmpty());
  EXPECT_FALSE(complete);
}

// The relay publishes another replica's job only while it is watched here: once the last
// watcher leaves, nothing keeps that memory current, so it is not kept.
TEST(JobEventBusTest, RelayedEventsAreNotKeptWithoutWatchers) {
  JobEventBus bus;
  bus.Publish(Event("remote", 1), /*keep_unwatched=*/false);
  bool complete = true;
  EXPECT_THAT(bus.Recent("remote", 0, 10, &complete), IsEmpty());
  EXPECT_FALSE(complete);
  Recorder r;
  int64_t token = bus.Subscribe("remote", r.callback());
  bus.Publish(Event("remote", 1), /*keep_unwatched=*/false);
  bus.Publish(Event("remote", 2), /*keep_unwatched=*/false);
  bus.Flush();
  EXPECT_THAT(r.seqs(), ElementsAre(1, 2));
  EXPECT_EQ(bus.Recent("remote", 0, 10, &complete).size(), 2u);
  bus.Unsubscribe(token);
  EXPECT_THAT(bus.Recent("remote", 0, 10, &complete), IsEmpty());
  EXPECT_FALSE(complete);
  EXPECT_EQ(bus.LastPublishedSeq("remote"), 0);
}

TEST(JobEventBusTest, UnwatchedJobsBeyondTheLimitDropTheLeastRecentlyPublished) {
  JobEventBus::Options options;
  options.max_unwatched_jobs = 2;
  JobEventBus bus(options);
  bus.Publish(Event("a", 1));
  bus.Publish(Event("b", 1));
  bus.Publish(Event("a", 2));  // b is now the least recently published
  Recorder r;
  int64_t token = bus.Subscribe("c", r.callback());  // watched jobs do not count
  bus.Publish(Event("c", 1));
  bus.Publish(Event("d", 1));
  bool complete = false;
  EXPECT_THAT(bus.Recent("b", 0, 10, &complete), IsEmpty());
  EXPECT_FALSE(complete) << "b was dropped";
  for (const char* kept : {"a", "c", "d"}) {
    EXPECT_FALSE(bus.Recent(kept, 0, 10, &complete).empty()) << kept;
    EXPECT_TRUE(complete) << kept;
  }
  bus.Flush();
  EXPECT_THAT(r.seqs(), ElementsAre(1));
  // c's last watcher leaves: three unwatched jobs, so the oldest (a) goes.
  bus.Unsubscribe(token);
  EXPECT_THAT(bus.Recent("a", 0, 10, &complete), IsEmpty());
  EXPECT_FALSE(bus.Recent("c", 0, 10, &complete).empty());
  EXPECT_FALSE(bus.Recent("d", 0, 10, &complete).empty());
}

TEST(JobEventBusTest, RecentAnswersOnlyWhatMemoryHoldsContiguously) {
  JobEventBus::Options options;
  options.retained_events = 4;
  JobEventBus bus(options);
  Recorder r;
  int64_t token = bus.Subscribe("job", r.callback());
  for (int64_t seq = 1; seq <= 6; ++seq) bus.Publish(Event("job", seq));  // keeps 3..6
  bool complete = true;
  EXPECT_THAT(bus.Recent("job", 1, 10, &complete), IsEmpty());
  EXPECT_FALSE(complete) << "event 2 was evicted";
  auto recent = bus.Recent("job", 2, 10, &complete);
  EXPECT_TRUE(complete);
  ASSERT_EQ(recent.size(), 4u);
  EXPECT_EQ(recent.front()->seq(), 3);
  recent = bus.Recent("job", 3, 2, &complete);
  EXPECT_TRUE(complete);
  ASSERT_EQ(recent.size(), 2u);
  EXPECT_EQ(recent[1]->seq(), 5);
  EXPECT_THAT(bus.Recent("job", 6, 10, &complete), IsEmpty());
  EXPECT_FALSE(complete) << "nothing newer is known here: the store may have it";
  // A gap (events 7..9 never published here) restarts memory at the new event.
  bus.Publish(Event("job", 10));
  EXPECT_THAT(bus.Recent("job", 6, 10, &complete), IsEmpty());
  EXPECT_FALSE(complete);
  recent = bus.Recent("job", 9, 10, &complete);
  EXPECT_TRUE(complete);
  ASSERT_EQ(recent.size(), 1u);
  bus.Flush();
  // Live delivery is bounded the same way (at most 4 undelivered events per job): in order,
  // each once, the newest included.
  auto seqs = r.seqs();
  ASSERT_FALSE(seqs.empty());
  EXPECT_TRUE(std::is_sorted(seqs.begin(), seqs.end()));
  EXPECT_EQ(std::adjacent_find(seqs.begin(), seqs.end()), seqs.end());
  EXPECT_EQ(seqs.back(), 10);
  bus.Unsubscribe(token);
}

TEST(JobEventBusTest, UnsubscribeWaitsForARunningCallbackAndStopsDelivery) {
  JobEventBus bus;
  absl::Notification in_callback, release;
  std::atomic<int> calls{0};
  int64_t token = bus.Subscribe("job", [&](absl::Span<const JobEventBus::EventPtr>) {
    ++calls;
    in_callback.Notify();
    release.WaitForNotification();
  });
  bus.Publish(Event("job", 1));
  in_callback.WaitForNotification();
  std::atomic<bool> unsubscribed{false};
  std::thread t([&] {
    bus.Unsubscribe(token);
    unsubscribed = true;
  });
  // Unsubscribe cannot return while the callback runs; let it finish.
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_FALSE(unsubscribed);
  release.Notify();
  t.join();
  bus.Publish(Event("job", 2));
  bus.Flush();
  EXPECT_EQ(calls, 1);
}

// Many publishers and watchers at once:
// every watcher ends with every event of its job, in order.
TEST(JobEventBusTest, ConcurrentPublishersAndWatchers) {
  JobEventBus bus;
  constexpr int kJobs = 4, kWatchers = 50, kEvents = 500;
  std::vector<std::unique_ptr<Recorder>> recorders;
  std::vector<int64_t> tokens;
  for (int i = 0; i < kJobs * kWatchers; ++i) {
    recorders.push_back(std::make_unique<Recorder>());
    tokens.push_back(
        bus.Subscribe("job" + std::to_string(i % kJobs), recorders.back()->callback()));
  }
  std::vector<std::thread> publishers;
  for (int j = 0; j < kJobs; ++j) {
    publishers.emplace_back([&, j] {
      for (int64_t seq = 1; seq <= kEvents; ++seq)
        bus.Publish(Event("job" + std::to_string(j), seq));
    });
  }
  for (auto& t : publishers) t.join();
  bus.Flush();
  for (int i = 0; i < kJobs * kWatchers; ++i) {
    auto seqs = recorders[static_cast<size_t>(i)]->seqs();
    ASSERT_EQ(seqs.size(), static_cast<size_t>(kEvents)) << "watcher " << i;
    for (size_t k = 0; k < seqs.size(); ++k) ASSERT_EQ(seqs[k], static_cast<int64_t>(k + 1));
  }
  for (int64_t token : tokens) bus.Unsubscribe(token);
}

}  // namespace
}  // namespace elexirion::jobs
