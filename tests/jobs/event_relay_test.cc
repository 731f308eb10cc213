// The cross-replica relay's logic over a real SQLite store and bus, with a scripted
// notification source standing in for LISTEN/NOTIFY (the PostgreSQL source has its own test
// against a real server, and tests/app the whole path across server processes).
#include "server/jobs/event_relay.h"

#include <atomic>
#include <deque>
#include <map>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/store/sqlite_store.h"
#include "tests/testutil/forwarding_store.h"
#include "tests/testutil/temp_dir.h"

namespace elexirion::jobs {
namespace {

// Notifications the test sends; a connection the test can break and take down.
class ScriptedSource final : public JobNotificationSource {
 public:
  absl::Status Connect() override {
    absl::MutexLock lock(&mu_);
    if (down_) return absl::UnavailableError("down");
    queue_.clear();  // what was sent while disconnected is lost, as with LISTEN
    connected_ = true;
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<std::string>> Wait(absl::Duration timeout) override {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !queue_.empty() || drop_; };
    mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
    if (drop_) {
      drop_ = false;
      connected_ = false;
      return absl::UnavailableError("connection lost");
    }
    std::vector<std::string> out(queue_.begin(), queue_.end());
    queue_.clear();
    return out;
  }
  void Notify(const std::string& job) {
    absl::MutexLock lock(&mu_);
    if (connected_) queue_.push_back(job);
  }
  // Breaks the connection and keeps reconnects failing until Up().
  void Down() {
    absl::MutexLock lock(&mu_);
    down_ = true;
    drop_ = true;
  }
  void Up() {
    absl::MutexLock lock(&mu_);
    down_ = false;
  }

 private:
  absl::Mutex mu_;
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  bool connected_ ABSL_GUARDED_BY(mu_) = false;
  bool down_ ABSL_GUARDED_BY(mu_) = false;
  bool drop_ ABSL_GUARDED_BY(mu_) = false;
};

// Counts event reads per job.
class CountingStore final : public testutil::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  absl::StatusOr<std::vector<store::JobEventRecord>> ListJobEvents(const std::string& job_id,
                                                                   int64_t after_seq,
                                                                   int limit) override {
    {
      absl::MutexLock lock(&mu_);
      ++reads_[job_id];
    }
    return ForwardingStore::ListJobEvents(job_id, after_seq, limit);
  }
  int reads(const std::string& job_id) const {
    absl::MutexLock lock(&mu_);
    auto it = reads_.find(job_id);
    return it == reads_.end() ? 0 : it->second;
  }

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, int> reads_ ABSL_GUARDED_BY(mu_);
};

class EventRelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::SqliteStore::Options options;
    options.path = dir_.File("events.sqlite");
    sqlite_ = *store::SqliteStore::Create(options);
    store_ = std::make_unique<CountingStore>(sqlite_.get());
  }
  void TearDown() override {
    if (relay_ != nullptr) relay_->Stop();
    for (int64_t token : tokens_) bus_.Unsubscribe(token);
  }

  void StartRelay(absl::Duration sweep_interval) {
    auto source = std::make_unique<ScriptedSource>();
    source_ = source.get();
    JobEventRelay::Options options;
    options.store = store_.get();
    options.bus = &bus_;
    options.source = std::move(source);
    options.poll = absl::Milliseconds(20);
    options.min_backoff = absl::Milliseconds(5);
    options.max_backoff = absl::Milliseconds(40);
    options.sweep_interval = sweep_interval;
    relay_ = *JobEventRelay::Create(std::move(options));
    relay_->Start();
    ASSERT_TRUE(WaitFor([&] { return relay_->connects() >= 1; }));
  }

  std::string CreateJob() {
    store::JobRecord job;
    job.program_name = "prog";
    return sqlite_->CreateJob(job)->id;
  }
  // What another replica's worker does: append (the notification is up to the test).
  void Append(const std::string& job, int n) {
    for (int i = 0; i < n; ++i) {
      v1::ProgressEvent event;
      event.mutable_trial_started()->set_trial(i);
      ASSERT_TRUE(store_
                      ->AppendJobEvent(job, std::nullopt, "trial_started",
                                       event.SerializeAsString(), absl::Now())
                      .ok());
    }
  }
  // A watcher of `job` on this replica: the seqs it is handed.
  std::shared_ptr<std::vector<int64_t>> Watch(const std::string& job) {
    auto seqs = std::make_shared<std::vector<int64_t>>();
    tokens_.push_back(
        bus_.Subscribe(job, [this, seqs](absl::Span<const JobEventBus::EventPtr> events) {
          absl::MutexLock lock(&mu_);
          for (const auto& e : events) seqs->push_back(e->seq());
        }));
    return seqs;
  }
  std::vector<int64_t> Seen(const std::shared_ptr<std::vector<int64_t>>& seqs) {
    absl::MutexLock lock(&mu_);
    return *seqs;
  }
  static bool WaitFor(const std::function<bool()>& done) {
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (absl::Now() < deadline) {
      if (done()) return true;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return done();
  }
  static std::vector<int64_t> Range(int64_t first, int64_t last) {
    std::vector<int64_t> out;
    for (int64_t s = first; s <= last; ++s) out.push_back(s);
    return out;
  }

  testutil::TempDir dir_;
  std::unique_ptr<store::Store> sqlite_;
  std::unique_ptr<CountingStore> store_;
  JobEventBus bus_;
  ScriptedSource* source_ = nullptr;
  std::unique_ptr<JobEventRelay> relay_;
  std::vector<int64_t> tokens_;
  absl::Mutex mu_;
};

TEST_F(EventRelayTest, PublishesAJobRunningElsewhereInOrderWithoutGaps) {
  StartRelay(absl::ZeroDuration());
  const std::string job = CreateJob();
  auto seen = Watch(job);
  // The first event makes the job known here (a job first seen late starts near its newest
  // event: see below).
  Append(job, 1);
  source_->Notify(job);
  ASSERT_TRUE(WaitFor([&] { return Seen(seen).size() >= 1; }));
  // One notification per event, then bursts announced once (a notification says "something
  // new", not which event).
  for (int i = 0; i < 4; ++i) {
    Append(job, 1);
    source_->Notify(job);
  }
  for (int burst = 0; burst < 5; ++burst) {
    Append(job, 7);
    source_->Notify(job);
  }
  ASSERT_TRUE(WaitFor([&] { return Seen(seen).size() >= 40; })) << Seen(seen).size();
  bus_.Flush();
  EXPECT_EQ(Seen(seen), Range(1, 40));
}

TEST_F(EventRelayTest, NothingIsMissedAcrossALostConnection) {
  StartRelay(absl::ZeroDuration());  // only the reconnect re-reads
  const std::string job = CreateJob();
  auto seen = Watch(job);
  Append(job, 3);
  source_->Notify(job);
  ASSERT_TRUE(WaitFor([&] { return Seen(seen).size() >= 3; }));
  source_->Down();
  // Appended while the listener is down: their notifications are lost.
  Append(job, 7);
  source_->Notify(job);
  absl::SleepFor(absl::Milliseconds(100));  // several failed reconnects
  source_->Up();
  ASSERT_TRUE(WaitFor([&] { return Seen(seen).size() >= 10; })) << Seen(seen).size();
  EXPECT_GE(relay_->connects(), 2);
  bus_.Flush();
  EXPECT_EQ(Seen(seen), Range(1, 10));
}

TEST_F(EventRelayTest, PeriodicSweepCatchesEventsWithoutNotifications) {
  StartRelay(absl::Milliseconds(50));
  const std::string job = CreateJob();
  auto seen = Watch(job);
  Append(job, 4);  // never notified
  ASSERT_TRUE(WaitFor([&] { return Seen(seen).size() >= 4; })) << Seen(seen).size();
  EXPECT_EQ(Seen(seen), Range(1, 4));
}

TEST_F(EventRelayTest, JobsNobodyWatchesHereAreNotRead) {
  StartRelay(absl::ZeroDuration());
  const std::string watched = CreateJob();
  const std::string unwatched = CreateJob();
  auto seen = Watch(watched);
  Append(unwatched, 5);
  for (int i = 0; i < 5; ++i) source_->Notify(unwatched);
  Append(watched, 1);
  source_->Notify(watched);
  ASSERT_TRUE(WaitFor([&] { return Seen(seen).size() >= 1; }));
  // The notifications were handled in order: the unwatched job's came first and cost nothing.
  // (The watched job may be read twice: by the sweep on connect and by its notification.)
  EXPECT_EQ(store_->reads(unwatched), 0);
  EXPECT_GE(store_->reads(watched), 1);
}

// A watcher joins a long job late: the relay does not replay the job's history into the
// bus (the watcher read it from the store), only what is new.
TEST_F(EventRelayTest, AJobFirstSeenLateStartsNearItsNewestEvent) {
  StartRelay(absl::ZeroDuration());
  const std::string job = CreateJob();
  Append(job, 100);
  auto seen = Watch(job);
  Append(job, 1);
  source_->Notify(job);
  ASSERT_TRUE(WaitFor([&] { return !Seen(seen).empty() && Seen(seen).back() == 101; }));
  bus_.Flush();
  EXPECT_EQ(Seen(seen), Range(101 - 16 + 1, 101));
}

}  // namespace
}  // namespace elexirion::jobs
