#include "tests/store/store_conformance.h"

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "server/store/records.h"

namespace elexirion::store::storetest {

bool StoreConformanceSuiteLinked() { return true; }

void StoreConformanceTest::SetUp() {
  open_ = GetParam().new_database();
  ASSERT_TRUE(open_ != nullptr);
  store_ = open_();
  ASSERT_TRUE(store_ != nullptr) << "the backend could not open a fresh database";
}

void StoreConformanceTest::TearDown() { store_.reset(); }

void StoreConformanceTest::Reopen() {
  store_.reset();
  store_ = open_();
  ASSERT_TRUE(store_ != nullptr) << "the backend could not reopen its database";
}

namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

absl::Status StatusOf(const absl::Status &s) { return s; }
template <typename T>
absl::Status StatusOf(const absl::StatusOr<T> &s) {
  return s.status();
}

#define ELX_CONCAT_INNER_(a, b) a##b
#define ELX_CONCAT_(a, b) ELX_CONCAT_INNER_(a, b)
#define ASSERT_OK(expr)                                  \
  do {                                                   \
    const absl::Status elx_s_ = StatusOf(expr);          \
    ASSERT_TRUE(elx_s_.ok()) << #expr << ": " << elx_s_; \
  } while (false)
#define EXPECT_OK(expr)                                  \
  do {                                                   \
    const absl::Status elx_s_ = StatusOf(expr);          \
    EXPECT_TRUE(elx_s_.ok()) << #expr << ": " << elx_s_; \
  } while (false)
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ELX_ASSERT_OK_AND_ASSIGN_IMPL_(ELX_CONCAT_(elx_sor_, __LINE__), lhs, expr)
#define ELX_ASSERT_OK_AND_ASSIGN_IMPL_(tmp, lhs, expr)    \
  auto tmp = (expr);                                      \
  ASSERT_TRUE(tmp.ok()) << #expr << ": " << tmp.status(); \
  lhs = std::move(tmp).value()
#define EXPECT_CODE(expr, code_name)                                                  \
  do {                                                                                \
    const absl::Status elx_c_ = StatusOf(expr);                                       \
    EXPECT_EQ(elx_c_.code(), absl::StatusCode::code_name) << #expr << ": " << elx_c_; \
  } while (false)

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

JobRecord NewJob(const std::string &program = "prog", absl::Time created = kT0,
                 const std::string &request_id = "") {
  JobRecord j;
  j.program_name = program;
  j.optimizer = "bootstrap_few_shot";
  j.request = std::string("req\0bytes", 9);
  j.progress = "p0";
  j.created_at = created;
  j.request_id = request_id;
  return j;
}

ProgramRecord NewProgram(const std::string &name, absl::Time created = kT0,
                         const std::string &job_id = "") {
  ProgramRecord p;
  p.name = name;
  p.pipeline_name = "pipe";
  p.job_id = job_id;
  p.optimizer = "mipro_v2";
  p.dspy_json = R"({"predict": {}})";
  p.optimized_yaml = "steps: []";
  p.scores_json = R"({"validation": 71.5})";
  p.created_at = created;
  return p;
}

ExampleRecord NewExample(const std::string &input, const std::string &id = "") {
  ExampleRecord e;
  e.id = id;
  e.input_json = absl::StrCat(R"({"q": ")", input, R"("})");
  e.expected_output_json = R"({"a": "x"})";
  e.metadata_json = R"({"source": "test"})";
  e.content_hash = absl::StrCat("hash-", input);
  return e;
}

ExecutionRecordRow NewExecution(const std::string &pipeline, absl::Time time,
                                const std::string &record_id = "") {
  ExecutionRecordRow r;
  r.pipeline_name = pipeline;
  r.record_id = record_id;
  r.program_version = 3;
  r.success = true;
  r.duration_seconds = 1.25;
  r.quality_score = 8.5;
  r.input_json = R"({"x": 1})";
  r.output_json = R"({"y": 2})";
  r.metadata_json = "{}";
  r.time = time;
  return r;
}

// Runs `fn(i)` on `n` threads and joins them.
template <typename Fn>
void RunThreads(int n, Fn fn) {
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (int i = 0; i < n; ++i) threads.emplace_back([&fn, i] { fn(i); });
  for (auto &t : threads) t.join();
}

// ---------------------------------------------------------------------------------------
// Health

TEST_P(StoreConformanceTest, PingAndIntegrityCheck) {
  EXPECT_OK(store().Ping());
  EXPECT_OK(store().IntegrityCheck());
}

// ---------------------------------------------------------------------------------------
// Jobs: create, get, list, count

TEST_P(StoreConformanceTest, CreateJobRoundTripsAndAssignsDefaults) {
  JobRecord in = NewJob("prog", kT0 + absl::Nanoseconds(1234567));
  in.run_after = kT0 + absl::Seconds(5);
  // Fields that only the store controls are ignored on create.
  in.attempt = 7;
  in.result = "ignored";
  in.lease_owner = "ignored";
  bool existed = true;
  ASSERT_OK_AND_ASSIGN(JobRecord created, store().CreateJob(in, &existed));
  EXPECT_FALSE(existed);
  EXPECT_EQ(created.id.size(), 16u);
  EXPECT_EQ(created.state, JobState::kQueued);
  EXPECT_EQ(created.program_name, "prog");
  EXPECT_EQ(created.optimizer, "bootstrap_few_shot");
  EXPECT_EQ(created.request, std::string("req\0bytes", 9));
  EXPECT_EQ(created.progress, "p0");
  EXPECT_EQ(created.attempt, 0);
  EXPECT_EQ(created.result, "");
  EXPECT_EQ(created.lease_owner, "");
  EXPECT_EQ(created.lease_expires_at, kUnsetTime);
  EXPECT_FALSE(created.cancel_requested);
  EXPECT_EQ(created.run_after, kT0 + absl::Seconds(5));
  // Microsecond precision.
  EXPECT_EQ(created.created_at, kT0 + absl::Microseconds(1234));
  EXPECT_EQ(created.started_at, kUnsetTime);
  EXPECT_EQ(created.ended_at, kUnsetTime);
  EXPECT_EQ(created.last_event_seq, 0);

  ASSERT_OK_AND_ASSIGN(JobRecord got, store().GetJob(created.id));
  EXPECT_EQ(got.id, created.id);
  EXPECT_EQ(got.request, created.request);
  EXPECT_EQ(got.created_at, created.created_at);
  EXPECT_EQ(got.run_after, created.run_after);
  EXPECT_EQ(got.state, JobState::kQueued);

  // A caller-chosen id is kept; creation time defaults to the store clock.
  JobRecord named = NewJob();
  named.id = "my-job-1";
  named.created_at = kUnsetTime;
  ASSERT_OK_AND_ASSIGN(JobRecord n, store().CreateJob(named));
  EXPECT_EQ(n.id, "my-job-1");
  EXPECT_GT(n.created_at, kT0);
}

TEST_P(StoreConformanceTest, CreateJobRejectsBadInput) {
  EXPECT_CODE(store().CreateJob(NewJob("")), kInvalidArgument);
  JobRecord running = NewJob();
  running.state = JobState::kRunning;
  EXPECT_CODE(store().CreateJob(running), kInvalidArgument);
  JobRecord a = NewJob();
  a.id = "dup-id";
  ASSERT_OK(store().CreateJob(a));
  EXPECT_CODE(store().CreateJob(a), kAlreadyExists);
  EXPECT_CODE(store().GetJob("no-such-job"), kNotFound);
}

TEST_P(StoreConformanceTest, CreateJobIsIdempotentOnRequestId) {
  bool existed = true;
  ASSERT_OK_AND_ASSIGN(JobRecord first, store().CreateJob(NewJob("a", kT0, "req-1"), &existed));
  EXPECT_FALSE(existed);
  // Same key, different content: the original comes back unchanged.
  ASSERT_OK_AND_ASSIGN(JobRecord again,
                       store().CreateJob(NewJob("b", kT0 + absl::Seconds(1), "req-1"), &existed));
  EXPECT_TRUE(existed);
  EXPECT_EQ(again.id, first.id);
  EXPECT_EQ(again.program_name, "a");
  // Empty keys never collide.
  ASSERT_OK(store().CreateJob(NewJob("c")));
  ASSERT_OK(store().CreateJob(NewJob("c")));
  ASSERT_OK_AND_ASSIGN(int64_t n, store().CountJobs({}));
  EXPECT_EQ(n, 3);
}

TEST_P(StoreConformanceTest, ConcurrentCreatesWithOneRequestIdMakeOneRow) {
  constexpr int kThreads = 50;
  std::vector<std::string> ids(kThreads);
  std::atomic<int> fresh{0};
  std::atomic<int> failures{0};
  RunThreads(kThreads, [&](int i) {
    bool existed = false;
    auto job = store().CreateJob(NewJob("prog", kT0, "same-key"), &existed);
    if (!job.ok()) {
      ++failures;
      ADD_FAILURE() << job.status();
      return;
    }
    ids[i] = job->id;
    if (!existed) ++fresh;
  });
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(fresh.load(), 1);
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 1u);
  ASSERT_OK_AND_ASSIGN(int64_t n, store().CountJobs({}));
  EXPECT_EQ(n, 1);
}

TEST_P(StoreConformanceTest, ListJobsNewestFirstWithFilters) {
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    ASSERT_OK_AND_ASSIGN(JobRecord j, store().CreateJob(NewJob(i % 2 == 0 ? "even" : "odd",
                                                               kT0 + absl::Seconds(i))));
    ids.push_back(j.id);
  }
  // Claim the oldest (job 0) and give it a checkpoint: lists leave checkpoints out.
  ASSERT_OK_AND_ASSIGN(auto claimed, store().ClaimJob("w", absl::Minutes(1), kT0 + absl::Hours(1)));
  ASSERT_TRUE(claimed.has_value());
  ASSERT_EQ(claimed->id, ids[0]);
  ASSERT_OK(store().CheckpointJob(LeaseOf(*claimed), "big-checkpoint", "prog"));

  auto ids_of = [](const JobPage &page) {
    std::vector<std::string> out;
    for (const auto &j : page.jobs) out.push_back(j.id);
    return out;
  };
  ASSERT_OK_AND_ASSIGN(JobPage all, store().ListJobs({}, 0, ""));
  EXPECT_THAT(ids_of(all), ElementsAre(ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]));
  EXPECT_EQ(all.next_page_token, "");
  EXPECT_EQ(all.jobs.back().checkpoint, "");
  EXPECT_EQ(all.jobs.back().progress, "prog");
  EXPECT_EQ(all.jobs.back().request, std::string("req\0bytes", 9));

  ASSERT_OK_AND_ASSIGN(JobPage even, store().ListJobs({{}, "even"}, 0, ""));
  EXPECT_THAT(ids_of(even), ElementsAre(ids[4], ids[2], ids[0]));
  ASSERT_OK_AND_ASSIGN(JobPage running, store().ListJobs({{JobState::kRunning}, ""}, 0, ""));
  EXPECT_THAT(ids_of(running), ElementsAre(ids[0]));
  ASSERT_OK_AND_ASSIGN(
      JobPage queued_odd,
      store().ListJobs({{JobState::kQueued, JobState::kFailed, JobState::kQueued}, "odd"}, 0, ""));
  EXPECT_THAT(ids_of(queued_odd), ElementsAre(ids[5], ids[3], ids[1]));
  ASSERT_OK_AND_ASSIGN(JobPage none, store().ListJobs({{JobState::kSucceeded}, ""}, 0, ""));
  EXPECT_THAT(none.jobs, IsEmpty());
  EXPECT_CODE(store().ListJobs({{static_cast<JobState>(42)}, ""}, 0, ""), kInvalidArgument);
}

TEST_P(StoreConformanceTest, ListJobsPagesWithoutDuplicatesOrGaps) {
  constexpr int kJobs = 23;
  std::set<std::string> created;
  for (int i = 0; i < kJobs; ++i) {
    // Groups of three share a creation time: the id breaks the tie.
    ASSERT_OK_AND_ASSIGN(JobRecord j, store().CreateJob(NewJob("p", kT0 + absl::Seconds(i / 3))));
    created.insert(j.id);
  }
  std::vector<JobRecord> seen;
  std::string token;
  int pages = 0;
  do {
    ASSERT_OK_AND_ASSIGN(JobPage page, store().ListJobs({}, 5, token));
    EXPECT_LE(page.jobs.size(), 5u);
    seen.insert(seen.end(), page.jobs.begin(), page.jobs.end());
    token = page.next_page_token;
    ASSERT_LT(++pages, 10);
  } while (!token.empty());
  EXPECT_EQ(pages, 5);
  ASSERT_EQ(seen.size(), static_cast<size_t>(kJobs));
  std::set<std::string> unique;
  for (const auto &j : seen) unique.insert(j.id);
  EXPECT_EQ(unique, created);
  for (size_t i = 1; i < seen.size(); ++i) {
    EXPECT_TRUE(std::make_pair(seen[i - 1].created_at, seen[i - 1].id) >
                std::make_pair(seen[i].created_at, seen[i].id))
        << "not newest first at " << i;
  }

  // A page token is opaque and bound to its filter.
  ASSERT_OK_AND_ASSIGN(JobPage first, store().ListJobs({}, 5, ""));
  ASSERT_FALSE(first.next_page_token.empty());
  EXPECT_CODE(store().ListJobs({}, 5, "garbage"), kInvalidArgument);
  EXPECT_CODE(store().ListJobs({}, 5, "!!!not base64!!!"), kInvalidArgument);
  EXPECT_CODE(store().ListJobs({{}, "other"}, 5, first.next_page_token), kInvalidArgument);
  EXPECT_CODE(store().ListPipelines(5, first.next_page_token), kInvalidArgument);
  std::string tampered = first.next_page_token;
  tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'A' ? 'B' : 'A';
  EXPECT_CODE(store().ListJobs({}, 5, tampered), kInvalidArgument);

  // Page size: default and clamp.
  ASSERT_OK_AND_ASSIGN(JobPage def, store().ListJobs({}, 0, ""));
  EXPECT_EQ(def.jobs.size(), static_cast<size_t>(kJobs));
  ASSERT_OK_AND_ASSIGN(JobPage huge, store().ListJobs({}, 1'000'000, ""));
  EXPECT_EQ(huge.jobs.size(), static_cast<size_t>(kJobs));
}

TEST_P(StoreConformanceTest, CountJobsByState) {
  for (int i = 0; i < 5; ++i) ASSERT_OK(store().CreateJob(NewJob("p", kT0 + absl::Seconds(i))));
  ASSERT_OK_AND_ASSIGN(auto c1, store().ClaimJob("w", absl::Minutes(1), kT0 + absl::Hours(1)));
  ASSERT_OK_AND_ASSIGN(auto c2, store().ClaimJob("w", absl::Minutes(1), kT0 + absl::Hours(1)));
  ASSERT_TRUE(c1.has_value() && c2.has_value());
  ASSERT_OK(store().FinishJob(LeaseOf(*c2), {JobState::kSucceeded}, kT0 + absl::Hours(1)));
  ASSERT_OK_AND_ASSIGN(int64_t all, store().CountJobs({}));
  ASSERT_OK_AND_ASSIGN(int64_t queued, store().CountJobs({JobState::kQueued}));
  ASSERT_OK_AND_ASSIGN(int64_t active, store().CountJobs({JobState::kQueued, JobState::kRunning}));
  ASSERT_OK_AND_ASSIGN(int64_t done, store().CountJobs({JobState::kSucceeded}));
  ASSERT_OK_AND_ASSIGN(int64_t failed, store().CountJobs({JobState::kFailed}));
  EXPECT_EQ(all, 5);
  EXPECT_EQ(queued, 3);
  EXPECT_EQ(active, 4);
  EXPECT_EQ(done, 1);
  EXPECT_EQ(failed, 0);
}

// ---------------------------------------------------------------------------------------
// Jobs: claims and leases

TEST_P(StoreConformanceTest, ClaimTakesOldestRunnableJob) {
  const absl::Time now = kT0 + absl::Minutes(10);
  ASSERT_OK_AND_ASSIGN(auto nothing, store().ClaimJob("w1", absl::Seconds(60), now));
  EXPECT_FALSE(nothing.has_value());

  JobRecord later = NewJob("p", kT0);
  later.run_after = now + absl::Minutes(5);  // backoff: not runnable yet
  ASSERT_OK_AND_ASSIGN(JobRecord delayed, store().CreateJob(later));
  ASSERT_OK_AND_ASSIGN(JobRecord a, store().CreateJob(NewJob("p", kT0 + absl::Seconds(1))));
  ASSERT_OK_AND_ASSIGN(JobRecord b, store().CreateJob(NewJob("p", kT0 + absl::Seconds(2))));

  ASSERT_OK_AND_ASSIGN(auto first, store().ClaimJob("w1", absl::Seconds(60), now));
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->id, a.id);
  EXPECT_EQ(first->state, JobState::kRunning);
  EXPECT_EQ(first->lease_owner, "w1");
  EXPECT_EQ(first->lease_expires_at, now + absl::Seconds(60));
  EXPECT_EQ(first->attempt, 1);
  EXPECT_EQ(first->started_at, now);
  EXPECT_EQ(first->request, std::string("req\0bytes", 9));

  ASSERT_OK_AND_ASSIGN(auto second, store().ClaimJob("w2", absl::Seconds(60), now));
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->id, b.id);
  ASSERT_OK_AND_ASSIGN(auto third, store().ClaimJob("w3", absl::Seconds(60), now));
  EXPECT_FALSE(third.has_value());

  // Once its run_after passes, the delayed job is claimable.
  ASSERT_OK_AND_ASSIGN(auto fourth,
                       store().ClaimJob("w3", absl::Seconds(60), now + absl::Minutes(5)));
  ASSERT_TRUE(fourth.has_value());
  EXPECT_EQ(fourth->id, delayed.id);

  ASSERT_OK_AND_ASSIGN(JobRecord got, store().GetJob(a.id));
  EXPECT_EQ(got.state, JobState::kRunning);
  EXPECT_EQ(got.lease_owner, "w1");

  EXPECT_CODE(store().ClaimJob("", absl::Seconds(60), now), kInvalidArgument);
  EXPECT_CODE(store().ClaimJob("w", absl::ZeroDuration(), now), kInvalidArgument);
}

TEST_P(StoreConformanceTest, ConcurrentClaimsAreExclusive) {
  constexpr int kJobs = 200;
  constexpr int kThreads = 4;
  for (int i = 0; i < kJobs; ++i) {
    ASSERT_OK(store().CreateJob(NewJob("p", kT0 + absl::Microseconds(i))));
  }
  absl::Mutex mu;
  std::vector<std::string> claimed;
  RunThreads(kThreads, [&](int t) {
    while (true) {
      auto job = store().ClaimJob(absl::StrCat("worker-", t), absl::Minutes(5), kT0);
      if (!job.ok()) {
        ADD_FAILURE() << job.status();
        return;
      }
      if (!job->has_value()) return;
      absl::MutexLock lock(&mu);
      claimed.push_back((*job)->id);
    }
  });
  EXPECT_EQ(claimed.size(), static_cast<size_t>(kJobs));
  EXPECT_EQ(std::set<std::string>(claimed.begin(), claimed.end()).size(),
            static_cast<size_t>(kJobs));
}

TEST_P(StoreConformanceTest, ClaimsAreExclusiveAcrossTwoStoresOnOneDatabase) {
  // Two stores = two replicas / processes sharing the database.
  std::unique_ptr<Store> other = open_();
  ASSERT_TRUE(other != nullptr);
  constexpr int kJobs = 120;
  for (int i = 0; i < kJobs; ++i) {
    ASSERT_OK(store().CreateJob(NewJob("p", kT0 + absl::Microseconds(i))));
  }
  absl::Mutex mu;
  std::vector<std::string> claimed;
  RunThreads(4, [&](int t) {
    Store &s = t % 2 == 0 ? store() : *other;
    while (true) {
      auto job = s.ClaimJob(absl::StrCat("worker-", t), absl::Minutes(5), kT0);
      if (!job.ok()) {
        ADD_FAILURE() << job.status();
        return;
      }
      if (!job->has_value()) return;
      absl::MutexLock lock(&mu);
      claimed.push_back((*job)->id);
    }
  });
  EXPECT_EQ(claimed.size(), static_cast<size_t>(kJobs));
  EXPECT_EQ(std::set<std::string>(claimed.begin(), claimed.end()).size(),
            static_cast<size_t>(kJobs));
}

TEST_P(StoreConformanceTest, ExpiredLeaseIsReclaimedWithNextAttempt) {
  ASSERT_OK_AND_ASSIGN(JobRecord job, store().CreateJob(NewJob()));
  ASSERT_OK_AND_ASSIGN(auto a, store().ClaimJob("worker-a", absl::Seconds(60), kT0));
  ASSERT_TRUE(a.has_value());
  // Lease still valid: nothing to claim.
  ASSERT_OK_AND_ASSIGN(auto none,
                       store().ClaimJob("worker-b", absl::Seconds(60), kT0 + absl::Seconds(59)));
  EXPECT_FALSE(none.has_value());
  // Worker A died; its lease expires; B recovers the job.
  ASSERT_OK_AND_ASSIGN(auto b,
                       store().ClaimJob("worker-b", absl::Seconds(60), kT0 + absl::Seconds(60)));
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->id, job.id);
  EXPECT_EQ(b->attempt, 2);
  EXPECT_EQ(b->lease_owner, "worker-b");
  EXPECT_EQ(b->lease_expires_at, kT0 + absl::Seconds(120));
  EXPECT_EQ(b->started_at, kT0);  // first start is kept
}

TEST_P(StoreConformanceTest, HeartbeatExtendsTheLease) {
  ASSERT_OK(store().CreateJob(NewJob()));
  ASSERT_OK_AND_ASSIGN(auto a, store().ClaimJob("worker-a", absl::Seconds(10), kT0));
  ASSERT_TRUE(a.has_value());
  ASSERT_OK_AND_ASSIGN(HeartbeatResult hb,
                       store().HeartbeatJob(LeaseOf(*a), kT0 + absl::Seconds(30)));
  EXPECT_FALSE(hb.cancel_requested);
  EXPECT_EQ(hb.lease_expires_at, kT0 + absl::Seconds(30));
  ASSERT_OK_AND_ASSIGN(auto none,
                       store().ClaimJob("worker-b", absl::Seconds(10), kT0 + absl::Seconds(20)));
  EXPECT_FALSE(none.has_value());
  ASSERT_OK_AND_ASSIGN(JobRecord got, store().GetJob(a->id));
  EXPECT_EQ(got.lease_expires_at, kT0 + absl::Seconds(30));
  EXPECT_EQ(got.attempt, 1);
}

TEST_P(StoreConformanceTest, WorkerThatLostItsLeaseCannotWrite) {
  ASSERT_OK_AND_ASSIGN(JobRecord job, store().CreateJob(NewJob()));
  ASSERT_OK_AND_ASSIGN(auto a, store().ClaimJob("worker-a", absl::Seconds(60), kT0));
  ASSERT_TRUE(a.has_value());
  const JobLease old_lease = LeaseOf(*a);
  ASSERT_OK(store().CheckpointJob(old_lease, "ckpt-a", "progress-a"));
  ASSERT_OK(store().AppendJobEvent(job.id, old_lease, "trial_finished", "a1", kT0));

  const absl::Time later = kT0 + absl::Minutes(2);
  ASSERT_OK_AND_ASSIGN(auto b, store().ClaimJob("worker-b", absl::Seconds(60), later));
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->checkpoint, "ckpt-a");  // B resumes from A's checkpoint
  const JobLease new_lease = LeaseOf(*b);

  // Every write of A is refused now.
  auto hb = store().HeartbeatJob(old_lease, later + absl::Minutes(1));
  EXPECT_TRUE(IsLeaseLost(hb.status())) << hb.status();
  absl::Status ck = store().CheckpointJob(old_lease, "ckpt-stale", "stale");
  EXPECT_TRUE(IsLeaseLost(ck)) << ck;
  auto fin = store().FinishJob(old_lease, {JobState::kSucceeded, "stale result"}, later);
  EXPECT_TRUE(IsLeaseLost(fin.status())) << fin.status();
  auto ev = store().AppendJobEvent(job.id, old_lease, "trial_finished", "stale", later);
  EXPECT_TRUE(IsLeaseLost(ev.status())) << ev.status();
  auto rel = store().ReleaseJob(old_lease, later, "stale", later);
  EXPECT_TRUE(IsLeaseLost(rel.status())) << rel.status();
  // The same worker id with the old attempt is still fenced out (a restarted process).
  JobLease same_worker_old_attempt = new_lease;
  same_worker_old_attempt.attempt = 1;
  EXPECT_TRUE(IsLeaseLost(store().CheckpointJob(same_worker_old_attempt, "x", "y")));

  // Nothing of A's stale writes landed; B writes fine.
  ASSERT_OK_AND_ASSIGN(JobRecord got, store().GetJob(job.id));
  EXPECT_EQ(got.checkpoint, "ckpt-a");
  EXPECT_EQ(got.lease_owner, "worker-b");
  EXPECT_EQ(got.last_event_seq, 1);
  ASSERT_OK(store().HeartbeatJob(new_lease, later + absl::Minutes(1)));
  ASSERT_OK(store().CheckpointJob(new_lease, "ckpt-b", "progress-b"));
  ASSERT_OK_AND_ASSIGN(int64_t seq,
                       store().AppendJobEvent(job.id, new_lease, "trial_finished", "b1", later));
  EXPECT_EQ(seq, 2);
  ASSERT_OK_AND_ASSIGN(JobRecord done,
                       store().FinishJob(new_lease, {JobState::kSucceeded, "result-b"}, later));
  EXPECT_EQ(done.result, "result-b");

  // After the end, the winner's lease is gone too.
  EXPECT_TRUE(IsLeaseLost(store().HeartbeatJob(new_lease, later).status()));
  EXPECT_TRUE(IsLeaseLost(store().FinishJob(new_lease, {JobState::kFailed}, later).status()));

  // Unknown job: NOT_FOUND rather than lease lost; malformed leases: INVALID_ARGUMENT.
  EXPECT_CODE(store().HeartbeatJob({"no-such-job", "w", 1}, later), kNotFound);
  EXPECT_CODE(store().CheckpointJob({"", "w", 1}, "", ""), kInvalidArgument);
  EXPECT_CODE(store().FinishJob({job.id, "", 1}, {}, later), kInvalidArgument);
}

TEST_P(StoreConformanceTest, CheckpointStoresResumeStateAndProgress) {
  ASSERT_OK(store().CreateJob(NewJob()));
  ASSERT_OK_AND_ASSIGN(auto a, store().ClaimJob("w", absl::Seconds(60), kT0));
  ASSERT_TRUE(a.has_value());
  const std::string blob("\x00\x01\xff checkpoint", 15);
  ASSERT_OK(store().CheckpointJob(LeaseOf(*a), blob, "progress-1"));
  ASSERT_OK_AND_ASSIGN(JobRecord got, store().GetJob(a->id));
  EXPECT_EQ(got.checkpoint, blob);
  EXPECT_EQ(got.progress, "progress-1");
}

TEST_P(StoreConformanceTest, FinishJobRecordsOutcomeAndTerminalEventAtomically) {
  ASSERT_OK(store().CreateJob(NewJob()));
  ASSERT_OK_AND_ASSIGN(auto a, store().ClaimJob("w", absl::Seconds(60), kT0));
  ASSERT_TRUE(a.has_value());
  EXPECT_CODE(store().FinishJob(LeaseOf(*a), {JobState::kRunning}, kT0), kInvalidArgument);
  EXPECT_CODE(store().FinishJob(LeaseOf(*a), {JobState::kQueued}, kT0), kInvalidArgument);

  JobOutcome outcome;
  outcome.state = JobState::kFailed;
  outcome.result = "best-so-far";
  outcome.end_reason = "END_REASON_ERROR";
  outcome.error = "provider returned 401";
  outcome.progress = "final-progress";
  outcome.event = NewJobEvent{"state_changed", "failed-payload"};
  const absl::Time end = kT0 + absl::Seconds(42);
  ASSERT_OK_AND_ASSIGN(JobRecord done, store().FinishJob(LeaseOf(*a), outcome, end));
  EXPECT_EQ(done.state, JobState::kFailed);
  EXPECT_EQ(done.result, "best-so-far");
  EXPECT_EQ(done.end_reason, "END_REASON_ERROR");
  EXPECT_EQ(done.error, "provider returned 401");
  EXPECT_EQ(done.progress, "final-progress");
  EXPECT_EQ(done.ended_at, end);
  EXPECT_EQ(done.last_event_seq, 1);
  ASSERT_OK_AND_ASSIGN(auto events, store().ListJobEvents(a->id, 0, 0));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, "state_changed");
  EXPECT_EQ(events[0].payload, "failed-payload");
  EXPECT_EQ(events[0].time, end);

  // An ended job is never claimed again, even long after.
  ASSERT_OK_AND_ASSIGN(auto none, store().ClaimJob("w2", absl::Seconds(60), end + absl::Hours(9)));
  EXPECT_FALSE(none.has_value());

  // Without a progress blob the stored one is kept.
  ASSERT_OK(store().CreateJob(NewJob()));
  ASSERT_OK_AND_ASSIGN(auto b, store().ClaimJob("w", absl::Seconds(60), kT0));
  ASSERT_TRUE(b.has_value());
  ASSERT_OK(store().CheckpointJob(LeaseOf(*b), "", "kept-progress"));
  ASSERT_OK_AND_ASSIGN(JobRecord ok, store().FinishJob(LeaseOf(*b), {JobState::kSucceeded}, kT0));
  EXPECT_EQ(ok.progress, "kept-progress");
  EXPECT_EQ(ok.last_event_seq, 0);
}

TEST_P(StoreConformanceTest, ReleaseJobReschedules) {
  ASSERT_OK_AND_ASSIGN(JobRecord job, store().CreateJob(NewJob()));
  ASSERT_OK_AND_ASSIGN(auto a, store().ClaimJob("w", absl::Seconds(60), kT0));
  ASSERT_TRUE(a.has_value());
  const absl::Time retry_at = kT0 + absl::Hours(1);
  ASSERT_OK_AND_ASSIGN(JobRecord released,
                       store().ReleaseJob(LeaseOf(*a), retry_at, "rate limited", kT0));
  EXPECT_EQ(released.state, JobState::kQueued);
  EXPECT_EQ(released.run_after, retry_at);
  EXPECT_EQ(released.error, "rate limited");
  EXPECT_EQ(released.lease_owner, "");
  EXPECT_EQ(released.lease_expires_at, kUnsetTime);
  EXPECT_EQ(released.ended_at, kUnsetTime);
  // The released worker is fenced out.
  EXPECT_TRUE(IsLeaseLost(store().CheckpointJob(LeaseOf(*a), "x", "y")));
  ASSERT_OK_AND_ASSIGN(auto early,
                       store().ClaimJob("w", absl::Seconds(60), retry_at - absl::Seconds(1)));
  EXPECT_FALSE(early.has_value());
  ASSERT_OK_AND_ASSIGN(auto again, store().ClaimJob("w", absl::Seconds(60), retry_at));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->id, job.id);
  EXPECT_EQ(again->attempt, 2);
}

// ---------------------------------------------------------------------------------------
// Jobs: cancellation and pruning

TEST_P(StoreConformanceTest, CancelQueuedJobEndsItAtOnce) {
  ASSERT_OK_AND_ASSIGN(JobRecord job, store().CreateJob(NewJob()));
  const absl::Time at = kT0 + absl::Seconds(3);
  ASSERT_OK_AND_ASSIGN(JobRecord cancelled, store().RequestCancel(job.id, at));
  EXPECT_EQ(cancelled.state, JobState::kCancelled);
  EXPECT_EQ(cancelled.end_reason, kEndReasonCancelled);
  EXPECT_EQ(cancelled.ended_at, at);
  ASSERT_OK_AND_ASSIGN(auto none, store().ClaimJob("w", absl::Seconds(60), kT0 + absl::Hours(1)));
  EXPECT_FALSE(none.has_value());
  // Ended: a second cancel is FAILED_PRECONDITION.
  EXPECT_CODE(store().RequestCancel(job.id, at), kFailedPrecondition);
  EXPECT_CODE(store().RequestCancel("no-such-job", at), kNotFound);
}

TEST_P(StoreConformanceTest, CancelRunningJobIsSeenOnHeartbeat) {
  ASSERT_OK_AND_ASSIGN(JobRecord job, store().CreateJob(NewJob()));
  ASSERT_OK_AND_ASSIGN(auto a, store().ClaimJob("w", absl::Seconds(60), kT0));
  ASSERT_TRUE(a.has_value());
  ASSERT_OK_AND_ASSIGN(JobRecord requested, store().RequestCancel(job.id, kT0));
  EXPECT_EQ(requested.state, JobState::kRunning);
  EXPECT_TRUE(requested.cancel_requested);
  ASSERT_OK(store().RequestCancel(job.id, kT0));  // idempotent while running
  ASSERT_OK_AND_ASSIGN(HeartbeatResult hb,
                       store().HeartbeatJob(LeaseOf(*a), kT0 + absl::Seconds(60)));
  EXPECT_TRUE(hb.cancel_requested);
  ASSERT_OK_AND_ASSIGN(
      JobRecord done,
      store().FinishJob(LeaseOf(*a), {JobState::kCancelled, "best", "END_REASON_CANCELLED"},
                        kT0 + absl::Seconds(1)));
  EXPECT_EQ(done.state, JobState::kCancelled);
  EXPECT_EQ(done.result, "best");
  EXPECT_CODE(store().RequestCancel(job.id, kT0), kFailedPrecondition);
}

TEST_P(StoreConformanceTest, CancelSucceededOrFailedJobIsFailedPrecondition) {
  for (JobState end : {JobState::kSucceeded, JobState::kFailed}) {
    ASSERT_OK_AND_ASSIGN(JobRecord job, store().CreateJob(NewJob()));
    ASSERT_OK_AND_ASSIGN(auto a, store().ClaimJob("w", absl::Seconds(60), kT0));
    ASSERT_TRUE(a.has_value());
    ASSERT_OK(store().FinishJob(LeaseOf(*a), {end}, kT0));
    EXPECT_CODE(store().RequestCancel(job.id, kT0), kFailedPrecondition);
    ASSERT_OK_AND_ASSIGN(JobRecord got, store().GetJob(job.id));
    EXPECT_EQ(got.state, end);
    EXPECT_FALSE(got.cancel_requested);
  }
}

TEST_P(StoreConformanceTest, ReleasingACancelRequestedJobCancelsIt) {
  ASSERT_OK_AND_ASSIGN(JobRecord job, store().CreateJob(NewJob()));
  ASSERT_OK_AND_ASSIGN(auto a, store().ClaimJob("w", absl::Seconds(60), kT0));
  ASSERT_TRUE(a.has_value());
  ASSERT_OK(store().RequestCancel(job.id, kT0));
  ASSERT_OK_AND_ASSIGN(JobRecord r, store().ReleaseJob(LeaseOf(*a), kT0, "draining", kT0));
  EXPECT_EQ(r.state, JobState::kCancelled);
  EXPECT_EQ(r.end_reason, kEndReasonCancelled);
  EXPECT_EQ(r.ended_at, kT0);
  ASSERT_OK_AND_ASSIGN(auto none, store().ClaimJob("w", absl::Seconds(60), kT0 + absl::Hours(1)));
  EXPECT_FALSE(none.has_value());
}

TEST_P(StoreConformanceTest, RecoveredJobCarriesItsPendingCancel) {
  ASSERT_OK_AND_ASSIGN(JobRecord job, store().CreateJob(NewJob()));
  ASSERT_OK_AND_ASSIGN(auto a, store().ClaimJob("w", absl::Seconds(60), kT0));
  ASSERT_TRUE(a.has_value());
  ASSERT_OK(store().RequestCancel(job.id, kT0));
  // The worker died before it saw the cancel: the next claimer must finish it as cancelled.
  ASSERT_OK_AND_ASSIGN(auto b, store().ClaimJob("w2", absl::Seconds(60), kT0 + absl::Minutes(5)));
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->id, job.id);
  EXPECT_TRUE(b->cancel_requested);
}

TEST_P(StoreConformanceTest, PruneJobsDeletesOnlyOldEndedJobs) {
  // old ended (cancelled at T0), new ended (T0+2h), queued, running.
  ASSERT_OK_AND_ASSIGN(JobRecord old_job, store().CreateJob(NewJob("p", kT0)));
  ASSERT_OK(store().AppendJobEvent(old_job.id, std::nullopt, "created", "", kT0));
  ASSERT_OK(store().RequestCancel(old_job.id, kT0));
  ASSERT_OK_AND_ASSIGN(JobRecord new_job, store().CreateJob(NewJob("p", kT0 + absl::Seconds(1))));
  ASSERT_OK(store().RequestCancel(new_job.id, kT0 + absl::Hours(2)));
  ASSERT_OK_AND_ASSIGN(JobRecord queued, store().CreateJob(NewJob("p", kT0 + absl::Seconds(2))));
  ASSERT_OK_AND_ASSIGN(JobRecord to_run, store().CreateJob(NewJob("p", kT0 + absl::Seconds(3))));
  ASSERT_OK(store().RequestCancel(queued.id,
                                  kT0 + absl::Hours(3)));  // ended later: kept
  ASSERT_OK_AND_ASSIGN(JobRecord queued2, store().CreateJob(NewJob("p", kT0 + absl::Seconds(4))));
  ASSERT_OK_AND_ASSIGN(auto running, store().ClaimJob("w", absl::Hours(10), kT0));
  ASSERT_TRUE(running.has_value());
  EXPECT_EQ(running->id, to_run.id);

  ASSERT_OK_AND_ASSIGN(int64_t deleted, store().PruneJobs(kT0 + absl::Hours(1), 100));
  EXPECT_EQ(deleted, 1);
  EXPECT_CODE(store().GetJob(old_job.id), kNotFound);
  EXPECT_CODE(store().ListJobEvents(old_job.id, 0, 0), kNotFound);
  EXPECT_OK(store().GetJob(new_job.id));
  EXPECT_OK(store().GetJob(queued2.id));
  EXPECT_OK(store().GetJob(to_run.id));
  // Batches: limit 1 deletes one at a time.
  ASSERT_OK_AND_ASSIGN(int64_t d1, store().PruneJobs(absl::InfiniteFuture(), 1));
  ASSERT_OK_AND_ASSIGN(int64_t d2, store().PruneJobs(absl::InfiniteFuture(), 1));
  ASSERT_OK_AND_ASSIGN(int64_t d3, store().PruneJobs(absl::InfiniteFuture(), 1));
  EXPECT_EQ(d1 + d2 + d3, 2);
  EXPECT_EQ(d3, 0);
  ASSERT_OK_AND_ASSIGN(int64_t left, store().CountJobs({}));
  EXPECT_EQ(left, 2);  // queued2 and the running one
}

// ---------------------------------------------------------------------------------------
// Job events

TEST_P(StoreConformanceTest, EventsGetContiguousSequenceNumbers) {
  ASSERT_OK_AND_ASSIGN(JobRecord job, store().CreateJob(NewJob()));
  ASSERT_OK_AND_ASSIGN(JobRecord other, store().CreateJob(NewJob()));
  for (int i = 1; i <= 5; ++i) {
    ASSERT_OK_AND_ASSIGN(int64_t seq,
                         store().AppendJobEvent(job.id, std::nullopt, "k", absl::StrCat("e", i),
                                                kT0 + absl::Seconds(i)));
    EXPECT_EQ(seq, i);
  }
  // Sequences are per job.
  ASSERT_OK_AND_ASSIGN(int64_t other_seq,
                       store().AppendJobEvent(other.id, std::nullopt, "k", "o1", kT0));
  EXPECT_EQ(other_seq, 1);
  ASSERT_OK_AND_ASSIGN(JobRecord got, store().GetJob(job.id));
  EXPECT_EQ(got.last_event_seq, 5);

  ASSERT_OK_AND_ASSIGN(auto all, store().ListJobEvents(job.id, 0, 0));
  ASSERT_EQ(all.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(all[i].job_id, job.id);
    EXPECT_EQ(all[i].seq, i + 1);
    EXPECT_EQ(all[i].kind, "k");
    EXPECT_EQ(all[i].payload, absl::StrCat("e", i + 1));
    EXPECT_EQ(all[i].time, kT0 + absl::Seconds(i + 1));
  }
  ASSERT_OK_AND_ASSIGN(auto after3, store().ListJobEvents(job.id, 3, 0));
  ASSERT_EQ(after3.size(), 2u);
  EXPECT_EQ(after3[0].seq, 4);
  ASSERT_OK_AND_ASSIGN(auto limited, store().ListJobEvents(job.id, 1, 2));
  ASSERT_EQ(limited.size(), 2u);
  EXPECT_EQ(limited[1].seq, 3);
  ASSERT_OK_AND_ASSIGN(auto none, store().ListJobEvents(job.id, 5, 0));
  EXPECT_THAT(none, IsEmpty());

  EXPECT_CODE(store().AppendJobEvent("no-such-job", std::nullopt, "k", "", kT0), kNotFound);
  EXPECT_CODE(store().ListJobEvents("no-such-job", 0, 0), kNotFound);
  EXPECT_CODE(store().AppendJobEvent(job.id, std::nullopt, "", "", kT0), kInvalidArgument);
  EXPECT_CODE(store().AppendJobEvent(job.id, JobLease{other.id, "w", 1}, "k", "", kT0),
              kInvalidArgument);
}

TEST_P(StoreConformanceTest, ConcurrentAppendsStayContiguous) {
  ASSERT_OK_AND_ASSIGN(JobRecord job, store().CreateJob(NewJob()));
  ASSERT_OK_AND_ASSIGN(auto a, store().ClaimJob("w", absl::Hours(1), kT0));
  ASSERT_TRUE(a.has_value());
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  absl::Mutex mu;
  std::vector<int64_t> seqs;
  RunThreads(kThreads, [&](int t) {
    for (int i = 0; i < kPerThread; ++i) {
      // Half fenced (the worker), half not (the API side).
      std::optional<JobLease> fence;
      if (t % 2 == 0) fence = LeaseOf(*a);
      auto seq = store().AppendJobEvent(job.id, fence, "k", absl::StrCat(t, "/", i), kT0);
      if (!seq.ok()) {
        ADD_FAILURE() << seq.status();
        return;
      }
      absl::MutexLock lock(&mu);
      seqs.push_back(*seq);
    }
  });
  std::sort(seqs.begin(), seqs.end());
  ASSERT_EQ(seqs.size(), static_cast<size_t>(kThreads * kPerThread));
  for (size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], static_cast<int64_t>(i) + 1);
  ASSERT_OK_AND_ASSIGN(auto events, store().ListJobEvents(job.id, 0, 10000));
  ASSERT_EQ(events.size(), seqs.size());
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].seq, static_cast<int64_t>(i) + 1);
  }
  ASSERT_OK_AND_ASSIGN(JobRecord got, store().GetJob(job.id));
  EXPECT_EQ(got.last_event_seq, kThreads * kPerThread);
}

// ---------------------------------------------------------------------------------------
// Programs

TEST_P(StoreConformanceTest, ProgramVersionsAndSingleProduction) {
  EXPECT_CODE(store().GetLatestProgram("qa"), kNotFound);
  for (int i = 1; i <= 3; ++i) {
    ProgramRecord p = NewProgram("qa", kT0 + absl::Seconds(i));
    p.version = 99;  // ignored
    p.dspy_json = absl::StrCat("v", i);
    ASSERT_OK_AND_ASSIGN(ProgramRecord created, store().CreateProgramVersion(p));
    EXPECT_EQ(created.version, i);
    EXPECT_FALSE(created.production);
  }
  ASSERT_OK_AND_ASSIGN(ProgramRecord other, store().CreateProgramVersion(NewProgram("other")));
  EXPECT_EQ(other.version, 1);

  ASSERT_OK_AND_ASSIGN(ProgramRecord v2, store().GetProgram("qa", 2));
  EXPECT_EQ(v2.dspy_json, "v2");
  EXPECT_EQ(v2.pipeline_name, "pipe");
  EXPECT_EQ(v2.optimizer, "mipro_v2");
  EXPECT_EQ(v2.optimized_yaml, "steps: []");
  EXPECT_EQ(v2.scores_json, R"({"validation": 71.5})");
  EXPECT_EQ(v2.created_at, kT0 + absl::Seconds(2));
  ASSERT_OK_AND_ASSIGN(ProgramRecord latest, store().GetLatestProgram("qa"));
  EXPECT_EQ(latest.version, 3);
  EXPECT_CODE(store().GetProgram("qa", 4), kNotFound);
  EXPECT_CODE(store().GetProductionProgram("qa"), kNotFound);

  ASSERT_OK_AND_ASSIGN(ProgramRecord promoted, store().PromoteProgram("qa", 3));
  EXPECT_TRUE(promoted.production);
  EXPECT_EQ(promoted.version, 3);
  // Rollback: promote an older version; exactly one production version remains.
  ASSERT_OK(store().PromoteProgram("qa", 1));
  ASSERT_OK(store().PromoteProgram("qa", 1));  // idempotent
  ASSERT_OK_AND_ASSIGN(ProgramRecord prod, store().GetProductionProgram("qa"));
  EXPECT_EQ(prod.version, 1);
  int production = 0;
  for (int v = 1; v <= 3; ++v) {
    ASSERT_OK_AND_ASSIGN(ProgramRecord p, store().GetProgram("qa", v));
    production += p.production ? 1 : 0;
  }
  EXPECT_EQ(production, 1);
  EXPECT_CODE(store().GetProductionProgram("other"), kNotFound);  // per name

  // Creating a production version demotes the previous one in the same transaction.
  ProgramRecord v4 = NewProgram("qa", kT0 + absl::Seconds(4));
  v4.production = true;
  ASSERT_OK_AND_ASSIGN(ProgramRecord created4, store().CreateProgramVersion(v4));
  EXPECT_EQ(created4.version, 4);
  ASSERT_OK_AND_ASSIGN(ProgramRecord prod4, store().GetProductionProgram("qa"));
  EXPECT_EQ(prod4.version, 4);
  ASSERT_OK_AND_ASSIGN(ProgramRecord v1, store().GetProgram("qa", 1));
  EXPECT_FALSE(v1.production);

  EXPECT_CODE(store().PromoteProgram("qa", 17), kNotFound);
  EXPECT_CODE(store().PromoteProgram("nope", 1), kNotFound);
  EXPECT_CODE(store().CreateProgramVersion(NewProgram("")), kInvalidArgument);
}

TEST_P(StoreConformanceTest, CreateProgramVersionIsIdempotentOnJobId) {
  bool existed = true;
  ASSERT_OK_AND_ASSIGN(ProgramRecord first,
                       store().CreateProgramVersion(NewProgram("qa", kT0, "job-1"), &existed));
  EXPECT_FALSE(existed);
  // The job's retry (after a crash between saving and finishing) gets the same version.
  ASSERT_OK_AND_ASSIGN(ProgramRecord again,
                       store().CreateProgramVersion(NewProgram("qa", kT0, "job-1"), &existed));
  EXPECT_TRUE(existed);
  EXPECT_EQ(again.version, first.version);
  ASSERT_OK_AND_ASSIGN(ProgramRecord next,
                       store().CreateProgramVersion(NewProgram("qa", kT0, "job-2"), &existed));
  EXPECT_FALSE(existed);
  EXPECT_EQ(next.version, 2);
  EXPECT_EQ(next.job_id, "job-2");
}

TEST_P(StoreConformanceTest, ConcurrentProgramVersionsAreUnique) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 5;
  absl::Mutex mu;
  std::vector<int64_t> versions;
  RunThreads(kThreads, [&](int) {
    for (int i = 0; i < kPerThread; ++i) {
      auto p = store().CreateProgramVersion(NewProgram("qa"));
      if (!p.ok()) {
        ADD_FAILURE() << p.status();
        return;
      }
      absl::MutexLock lock(&mu);
      versions.push_back(p->version);
    }
  });
  std::sort(versions.begin(), versions.end());
  ASSERT_EQ(versions.size(), static_cast<size_t>(kThreads * kPerThread));
  for (size_t i = 0; i < versions.size(); ++i) {
    EXPECT_EQ(versions[i], static_cast<int64_t>(i) + 1);
  }
}

TEST_P(StoreConformanceTest, ListProgramsPagesVersionsAndLatestPerName) {
  for (int i = 0; i < 7; ++i) {
    ASSERT_OK(store().CreateProgramVersion(NewProgram("qa", kT0 + absl::Seconds(i))));
  }
  ASSERT_OK(store().CreateProgramVersion(NewProgram("b", kT0 + absl::Seconds(10))));
  ASSERT_OK(store().CreateProgramVersion(NewProgram("c", kT0 + absl::Seconds(20))));
  ASSERT_OK(store().CreateProgramVersion(NewProgram("c", kT0 + absl::Seconds(30))));

  std::vector<int64_t> versions;
  std::string token;
  do {
    ASSERT_OK_AND_ASSIGN(ProgramPage page, store().ListPrograms("qa", 3, token));
    for (const auto &p : page.programs) {
      EXPECT_EQ(p.name, "qa");
      versions.push_back(p.version);
    }
    token = page.next_page_token;
  } while (!token.empty());
  EXPECT_THAT(versions, ElementsAre(7, 6, 5, 4, 3, 2, 1));

  std::vector<std::string> latest;
  do {
    ASSERT_OK_AND_ASSIGN(ProgramPage page, store().ListPrograms("", 2, token));
    for (const auto &p : page.programs) latest.push_back(absl::StrCat(p.name, "@", p.version));
    token = page.next_page_token;
  } while (!token.empty());
  EXPECT_THAT(latest, ElementsAre("c@2", "b@1", "qa@7"));

  ASSERT_OK_AND_ASSIGN(ProgramPage first, store().ListPrograms("qa", 3, ""));
  EXPECT_CODE(store().ListPrograms("c", 3, first.next_page_token), kInvalidArgument);
  EXPECT_CODE(store().ListPrograms("", 3, first.next_page_token), kInvalidArgument);
  EXPECT_CODE(store().ListPrograms("qa", 3, "zzz"), kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(ProgramPage unknown, store().ListPrograms("unknown", 3, ""));
  EXPECT_THAT(unknown.programs, IsEmpty());
}

// ---------------------------------------------------------------------------------------
// Pipelines

TEST_P(StoreConformanceTest, PipelinesUpsertRevisionsListAndDelete) {
  ASSERT_OK_AND_ASSIGN(PipelineRecord p1,
                       store().UpsertPipeline({"summarize", "steps: [a]", 0, kT0}));
  EXPECT_EQ(p1.revision, 1);
  EXPECT_EQ(p1.updated_at, kT0);
  ASSERT_OK_AND_ASSIGN(PipelineRecord p2, store().UpsertPipeline({"summarize", "steps: [a, b]", 0,
                                                                  kT0 + absl::Seconds(1)}));
  EXPECT_EQ(p2.revision, 2);
  ASSERT_OK_AND_ASSIGN(PipelineRecord got, store().GetPipeline("summarize"));
  EXPECT_EQ(got.yaml, "steps: [a, b]");
  EXPECT_EQ(got.revision, 2);
  EXPECT_EQ(got.updated_at, kT0 + absl::Seconds(1));
  EXPECT_CODE(store().GetPipeline("nope"), kNotFound);
  EXPECT_CODE(store().UpsertPipeline({"", "x", 0, kT0}), kInvalidArgument);

  for (int i = 0; i < 11; ++i) {
    ASSERT_OK(store().UpsertPipeline({absl::StrCat("p", 10 + i), "steps: []", 0, kT0}));
  }
  std::vector<std::string> names;
  std::string token;
  do {
    ASSERT_OK_AND_ASSIGN(PipelinePage page, store().ListPipelines(4, token));
    for (const auto &p : page.pipelines) names.push_back(p.name);
    token = page.next_page_token;
  } while (!token.empty());
  ASSERT_EQ(names.size(), 12u);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), 12u);
  EXPECT_CODE(store().ListPipelines(4, "garbage"), kInvalidArgument);

  ASSERT_OK(store().DeletePipeline("summarize"));
  EXPECT_CODE(store().GetPipeline("summarize"), kNotFound);
  EXPECT_CODE(store().DeletePipeline("summarize"), kNotFound);
  // Re-registering starts over at revision 1.
  ASSERT_OK_AND_ASSIGN(PipelineRecord p3, store().UpsertPipeline({"summarize", "y", 0, kT0}));
  EXPECT_EQ(p3.revision, 1);
}

// ---------------------------------------------------------------------------------------
// Datasets and examples

TEST_P(StoreConformanceTest, DatasetsCreateGetListDelete) {
  ASSERT_OK_AND_ASSIGN(DatasetRecord d, store().CreateDataset({"qa-set", "qa", kT0, 99}));
  EXPECT_EQ(d.example_count, 0);
  EXPECT_CODE(store().CreateDataset({"qa-set", "other", kT0, 0}), kAlreadyExists);
  EXPECT_CODE(store().CreateDataset({"", "qa", kT0, 0}), kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(DatasetRecord got, store().GetDataset("qa-set"));
  EXPECT_EQ(got.pipeline_name, "qa");
  EXPECT_EQ(got.created_at, kT0);
  EXPECT_CODE(store().GetDataset("nope"), kNotFound);

  for (int i = 0; i < 6; ++i) ASSERT_OK(store().CreateDataset({absl::StrCat("d", i), "", kT0, 0}));
  std::vector<std::string> names;
  std::string token;
  do {
    ASSERT_OK_AND_ASSIGN(DatasetPage page, store().ListDatasets(3, token));
    for (const auto &ds : page.datasets) names.push_back(ds.name);
    token = page.next_page_token;
  } while (!token.empty());
  EXPECT_THAT(names, ElementsAre("d0", "d1", "d2", "d3", "d4", "d5", "qa-set"));
  EXPECT_CODE(store().ListDatasets(3, "garbage"), kInvalidArgument);

  ASSERT_OK(store().AddExamples("qa-set", {NewExample("a"), NewExample("b")}));
  ASSERT_OK(store().DeleteDataset("qa-set"));
  EXPECT_CODE(store().GetDataset("qa-set"), kNotFound);
  EXPECT_CODE(store().DeleteDataset("qa-set"), kNotFound);
  // Its examples went with it.
  ASSERT_OK(store().CreateDataset({"qa-set", "qa", kT0, 0}));
  ASSERT_OK_AND_ASSIGN(ExamplePage page, store().ListExamples("qa-set", 0, ""));
  EXPECT_THAT(page.examples, IsEmpty());
  ASSERT_OK_AND_ASSIGN(AddExamplesResult again, store().AddExamples("qa-set", {NewExample("a")}));
  EXPECT_EQ(again.ids.size(), 1u);
  EXPECT_EQ(again.duplicates, 0);
}

TEST_P(StoreConformanceTest, AddExamplesSkipsDuplicatesByContentHash) {
  ASSERT_OK(store().CreateDataset({"ds", "", kT0, 0}));
  ASSERT_OK(store().CreateDataset({"other", "", kT0, 0}));
  ASSERT_OK_AND_ASSIGN(AddExamplesResult r1,
                       store().AddExamples("ds", {NewExample("a"), NewExample("b", "given-1")}));
  ASSERT_EQ(r1.ids.size(), 2u);
  EXPECT_EQ(r1.ids[0].size(), 8u);
  EXPECT_EQ(r1.ids[1], "given-1");
  EXPECT_EQ(r1.duplicates, 0);

  // "a" exists already, "c" appears twice in the batch.
  ASSERT_OK_AND_ASSIGN(AddExamplesResult r2,
                       store().AddExamples("ds", {NewExample("a"), NewExample("c"), NewExample("c"),
                                                  NewExample("d")}));
  EXPECT_EQ(r2.ids.size(), 2u);
  EXPECT_EQ(r2.duplicates, 2);
  // Dedupe is per dataset.
  ASSERT_OK_AND_ASSIGN(AddExamplesResult r3, store().AddExamples("other", {NewExample("a")}));
  EXPECT_EQ(r3.ids.size(), 1u);

  ASSERT_OK_AND_ASSIGN(DatasetRecord ds, store().GetDataset("ds"));
  EXPECT_EQ(ds.example_count, 4);

  // A taken caller id fails the whole batch; nothing of it is stored.
  EXPECT_CODE(store().AddExamples("ds", {NewExample("e"), NewExample("f", "given-1")}),
              kAlreadyExists);
  EXPECT_CODE(store().AddExamples("nope", {NewExample("a")}), kNotFound);
  ExampleRecord no_hash = NewExample("g");
  no_hash.content_hash.clear();
  EXPECT_CODE(store().AddExamples("ds", {no_hash}), kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(DatasetRecord ds2, store().GetDataset("ds"));
  EXPECT_EQ(ds2.example_count, 4);
  ASSERT_OK_AND_ASSIGN(AddExamplesResult empty, store().AddExamples("ds", {}));
  EXPECT_THAT(empty.ids, IsEmpty());
}

// Batches large enough for a store's bulk path (PostgreSQL: COPY, then the row-by-row INSERT
// when COPY meets a conflict) give the same results as small ones.
TEST_P(StoreConformanceTest, LargeExampleBatchesSkipDuplicatesAndRefuseTakenIds) {
  ASSERT_OK(store().CreateDataset({"big", "", kT0, 0}));
  auto batch = [](int from, int to) {
    std::vector<ExampleRecord> examples;
    for (int i = from; i < to; ++i) examples.push_back(NewExample(absl::StrCat("in-", i)));
    return examples;
  };
  ASSERT_OK_AND_ASSIGN(AddExamplesResult first, store().AddExamples("big", batch(0, 40)));
  EXPECT_EQ(first.ids.size(), 40u);
  EXPECT_EQ(first.duplicates, 0);
  // 30..69: ten are stored already, thirty are new.
  ASSERT_OK_AND_ASSIGN(AddExamplesResult overlap, store().AddExamples("big", batch(30, 70)));
  EXPECT_EQ(overlap.ids.size(), 30u);
  EXPECT_EQ(overlap.duplicates, 10);
  // A taken caller id among 40 new examples fails the whole batch.
  std::vector<ExampleRecord> taken = batch(100, 140);
  taken[25].id = first.ids[3];
  EXPECT_CODE(store().AddExamples("big", taken), kAlreadyExists);
  ASSERT_OK_AND_ASSIGN(DatasetRecord ds, store().GetDataset("big"));
  EXPECT_EQ(ds.example_count, 70);
  ASSERT_OK_AND_ASSIGN(ExamplePage page, store().ListExamples("big", 1000, ""));
  ASSERT_EQ(page.examples.size(), 70u);
  const ExampleRecord expected = NewExample("in-0");
  EXPECT_EQ(page.examples[0].id, first.ids[0]);
  EXPECT_EQ(page.examples[0].input_json, expected.input_json);
  EXPECT_EQ(page.examples[0].expected_output_json, expected.expected_output_json);
  EXPECT_EQ(page.examples[0].metadata_json, expected.metadata_json);
  EXPECT_EQ(page.examples[0].content_hash, expected.content_hash);
  EXPECT_EQ(page.examples[69].content_hash, NewExample("in-69").content_hash);
}

TEST_P(StoreConformanceTest, ListExamplesOldestFirstAndDelete) {
  ASSERT_OK(store().CreateDataset({"ds", "", kT0, 0}));
  std::vector<std::string> ids;
  for (int batch = 0; batch < 3; ++batch) {
    std::vector<ExampleRecord> examples;
    for (int i = 0; i < 4; ++i) examples.push_back(NewExample(absl::StrCat(batch, "-", i)));
    ASSERT_OK_AND_ASSIGN(AddExamplesResult r, store().AddExamples("ds", examples));
    ids.insert(ids.end(), r.ids.begin(), r.ids.end());
  }
  std::vector<std::string> listed;
  std::string token;
  do {
    ASSERT_OK_AND_ASSIGN(ExamplePage page, store().ListExamples("ds", 5, token));
    for (const auto &e : page.examples) {
      EXPECT_EQ(e.dataset, "ds");
      listed.push_back(e.id);
    }
    token = page.next_page_token;
  } while (!token.empty());
  EXPECT_EQ(listed, ids);  // insertion order

  ASSERT_OK_AND_ASSIGN(ExamplePage first, store().ListExamples("ds", 1, ""));
  ASSERT_EQ(first.examples.size(), 1u);
  const ExampleRecord &e = first.examples[0];
  EXPECT_EQ(e.input_json, R"({"q": "0-0"})");
  EXPECT_EQ(e.expected_output_json, R"({"a": "x"})");
  EXPECT_EQ(e.metadata_json, R"({"source": "test"})");
  EXPECT_EQ(e.content_hash, "hash-0-0");
  EXPECT_NE(e.created_at, kUnsetTime);
  EXPECT_CODE(store().ListExamples("other", 1, first.next_page_token), kInvalidArgument);
  EXPECT_CODE(store().ListExamples("ds", 1, "garbage"), kInvalidArgument);
  EXPECT_CODE(store().ListExamples("nope", 1, ""), kNotFound);

  ASSERT_OK(store().DeleteExample("ds", ids[0]));
  EXPECT_CODE(store().DeleteExample("ds", ids[0]), kNotFound);
  EXPECT_CODE(store().DeleteExample("nope", ids[1]), kNotFound);
  ASSERT_OK_AND_ASSIGN(DatasetRecord ds, store().GetDataset("ds"));
  EXPECT_EQ(ds.example_count, 11);
  // The deleted content can be added again.
  ASSERT_OK_AND_ASSIGN(AddExamplesResult readded, store().AddExamples("ds", {NewExample("0-0")}));
  EXPECT_EQ(readded.ids.size(), 1u);
}

TEST_P(StoreConformanceTest, CountExamplesSince) {
  ASSERT_OK(store().CreateDataset({"ds", "", kT0, 0}));
  std::vector<ExampleRecord> examples;
  for (int i = 0; i < 5; ++i) {
    ExampleRecord e = NewExample(absl::StrCat(i));
    e.created_at = kT0 + absl::Hours(i);
    examples.push_back(e);
  }
  ASSERT_OK(store().AddExamples("ds", examples));
  ASSERT_OK_AND_ASSIGN(int64_t all, store().CountExamplesSince("ds", kT0));
  ASSERT_OK_AND_ASSIGN(int64_t recent, store().CountExamplesSince("ds", kT0 + absl::Hours(3)));
  ASSERT_OK_AND_ASSIGN(int64_t none, store().CountExamplesSince("ds", kT0 + absl::Hours(5)));
  EXPECT_EQ(all, 5);
  EXPECT_EQ(recent, 2);
  EXPECT_EQ(none, 0);
  EXPECT_CODE(store().CountExamplesSince("nope", kT0), kNotFound);
}

// ---------------------------------------------------------------------------------------
// Executions

TEST_P(StoreConformanceTest, InsertExecutionsIsIdempotentOnRecordId) {
  ASSERT_OK_AND_ASSIGN(auto first,
                       store().InsertExecutions({NewExecution("p", kT0, "rec-1"),
                                                 NewExecution("p", kT0 + absl::Seconds(1))}));
  ASSERT_EQ(first.size(), 2u);
  EXPECT_OK(first[0].status);
  EXPECT_FALSE(first[0].duplicate);
  EXPECT_EQ(first[0].id.size(), 16u);

  ExecutionRecordRow bad = NewExecution("", kT0);
  ASSERT_OK_AND_ASSIGN(
      auto second,
      store().InsertExecutions({NewExecution("p", kT0 + absl::Seconds(2), "rec-1"),  // retry
                                bad, NewExecution("p", kT0 + absl::Seconds(3), "rec-2"),
                                NewExecution("p", kT0 + absl::Seconds(4), "rec-2"),  // in batch
                                NewExecution("q", kT0 + absl::Seconds(5), "rec-1")}));
  ASSERT_EQ(second.size(), 5u);
  EXPECT_OK(second[0].status);
  EXPECT_TRUE(second[0].duplicate);
  EXPECT_EQ(second[0].id, first[0].id);
  EXPECT_EQ(second[1].status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_OK(second[2].status);
  EXPECT_FALSE(second[2].duplicate);
  EXPECT_TRUE(second[3].duplicate);
  EXPECT_EQ(second[3].id, second[2].id);
  // record_id is unique per pipeline.
  EXPECT_OK(second[4].status);
  EXPECT_FALSE(second[4].duplicate);

  // A caller-chosen id that is taken rejects that row alone.
  ExecutionRecordRow taken = NewExecution("p", kT0 + absl::Seconds(6));
  taken.id = first[0].id;
  ExecutionRecordRow chosen = NewExecution("p", kT0 + absl::Seconds(7));
  chosen.id = "my-own-id";
  ASSERT_OK_AND_ASSIGN(auto third, store().InsertExecutions({taken, chosen}));
  ASSERT_EQ(third.size(), 2u);
  EXPECT_EQ(third[0].status.code(), absl::StatusCode::kAlreadyExists) << third[0].status;
  EXPECT_OK(third[1].status);
  EXPECT_EQ(third[1].id, "my-own-id");

  ASSERT_OK_AND_ASSIGN(auto rows, store().ListExecutions("p", kT0, absl::InfiniteFuture(), 0));
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].id, first[0].id);
  EXPECT_EQ(rows[0].record_id, "rec-1");
  EXPECT_EQ(rows[0].time, kT0);  // the retry did not overwrite it
  EXPECT_EQ(rows[0].pipeline_name, "p");
  EXPECT_EQ(rows[0].program_version, 3);
  EXPECT_TRUE(rows[0].success);
  EXPECT_DOUBLE_EQ(rows[0].duration_seconds, 1.25);
  EXPECT_DOUBLE_EQ(rows[0].quality_score, 8.5);
  EXPECT_EQ(rows[0].input_json, R"({"x": 1})");
  EXPECT_EQ(rows[0].output_json, R"({"y": 2})");
  EXPECT_EQ(rows[0].metadata_json, "{}");
  EXPECT_EQ(rows[1].record_id, "");
  EXPECT_EQ(rows[2].record_id, "rec-2");
  EXPECT_EQ(rows[3].id, "my-own-id");
}

// A batch without in-batch repeats whose rows meet a stored record_id or a taken id
// (PostgreSQL: the COPY fails and the batch is redone row by row) stores the others.
TEST_P(StoreConformanceTest, InsertExecutionsSortsOutConflictsWithStoredRows) {
  ASSERT_OK_AND_ASSIGN(auto first, store().InsertExecutions({NewExecution("p", kT0, "rec-1")}));
  ASSERT_EQ(first.size(), 1u);
  ASSERT_OK(first[0].status);
  ExecutionRecordRow taken = NewExecution("p", kT0 + absl::Seconds(3), "rec-3");
  taken.id = first[0].id;
  ASSERT_OK_AND_ASSIGN(
      auto second, store().InsertExecutions({NewExecution("p", kT0 + absl::Seconds(1), "rec-0"),
                                             NewExecution("p", kT0 + absl::Seconds(2), "rec-1"),
                                             taken, NewExecution("p", kT0 + absl::Seconds(4))}));
  ASSERT_EQ(second.size(), 4u);
  EXPECT_OK(second[0].status);
  EXPECT_FALSE(second[0].duplicate);
  EXPECT_OK(second[1].status);
  EXPECT_TRUE(second[1].duplicate);
  EXPECT_EQ(second[1].id, first[0].id);
  EXPECT_EQ(second[2].status.code(), absl::StatusCode::kAlreadyExists) << second[2].status;
  EXPECT_OK(second[3].status);
  ASSERT_OK_AND_ASSIGN(auto rows, store().ListExecutions("p", kT0, absl::InfiniteFuture(), 0));
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].id, first[0].id);
  EXPECT_EQ(rows[1].id, second[0].id);
  EXPECT_EQ(rows[2].id, second[3].id);
}

// Text with the characters COPY escapes (tab, newline, backslash, "\N") and extreme numbers
// come back exactly.
TEST_P(StoreConformanceTest, InsertExecutionsKeepsAwkwardValuesExactly) {
  ExecutionRecordRow r = NewExecution("p\tq", kT0, "rec\\N");
  r.input_json = "{\"a\": \"tab\\there\"}\t\n\r\\N\\\\ \xc3\xa9\xe2\x82\xac";
  r.output_json = "\\N";
  r.metadata_json = "line1\nline2\\";
  r.program_version = -9007199254740993;
  r.success = false;
  r.duration_seconds = 0.1;
  r.quality_score = 1.7976931348623157e308;
  ExecutionRecordRow tiny = NewExecution("p\tq", kT0 + absl::Seconds(1));
  tiny.duration_seconds = 4.9406564584124654e-324;
  tiny.quality_score = -2.5e-300;
  ASSERT_OK_AND_ASSIGN(auto results, store().InsertExecutions({r, tiny}));
  ASSERT_EQ(results.size(), 2u);
  ASSERT_OK(results[0].status);
  ASSERT_OK(results[1].status);
  ASSERT_OK_AND_ASSIGN(auto rows, store().ListExecutions("p\tq", kT0, absl::InfiniteFuture(), 0));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].pipeline_name, "p\tq");
  EXPECT_EQ(rows[0].record_id, "rec\\N");
  EXPECT_EQ(rows[0].input_json, r.input_json);
  EXPECT_EQ(rows[0].output_json, "\\N");
  EXPECT_EQ(rows[0].metadata_json, r.metadata_json);
  EXPECT_EQ(rows[0].program_version, r.program_version);
  EXPECT_FALSE(rows[0].success);
  EXPECT_EQ(rows[0].duration_seconds, 0.1);
  EXPECT_EQ(rows[0].quality_score, 1.7976931348623157e308);
  EXPECT_EQ(rows[1].record_id, "");
  EXPECT_EQ(rows[1].duration_seconds, 4.9406564584124654e-324);
  EXPECT_EQ(rows[1].quality_score, -2.5e-300);
  // The retry of the first is a duplicate (its record_id went in as text, not as NULL).
  ASSERT_OK_AND_ASSIGN(auto retry, store().InsertExecutions({r}));
  ASSERT_EQ(retry.size(), 1u);
  EXPECT_TRUE(retry[0].duplicate);
  EXPECT_EQ(retry[0].id, results[0].id);
}

// A batch of several megabytes (PostgreSQL sends COPY data in chunks of about 1 MB).
TEST_P(StoreConformanceTest, InsertExecutionsOfSeveralMegabytes) {
  std::vector<ExecutionRecordRow> batch;
  for (int i = 0; i < 3000; ++i) {
    ExecutionRecordRow r = NewExecution("big", kT0 + absl::Milliseconds(i), absl::StrCat("r", i));
    r.input_json = absl::StrCat(std::string(1000, 'x'), "\t\n\\", i);
    batch.push_back(std::move(r));
  }
  ASSERT_OK_AND_ASSIGN(auto results, store().InsertExecutions(batch));
  ASSERT_EQ(results.size(), batch.size());
  for (const auto &r : results) EXPECT_OK(r.status);
  ASSERT_OK_AND_ASSIGN(auto rows, store().ListExecutions("big", kT0, absl::InfiniteFuture(), 5000));
  ASSERT_EQ(rows.size(), batch.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i].input_json, batch[i].input_json) << i;
    EXPECT_EQ(rows[i].record_id, batch[i].record_id) << i;
  }
}

TEST_P(StoreConformanceTest, ListAndPruneExecutionsByTime) {
  std::vector<ExecutionRecordRow> batch;
  for (int i = 0; i < 10; ++i) batch.push_back(NewExecution("p", kT0 + absl::Minutes(i)));
  batch.push_back(NewExecution("other", kT0));
  ASSERT_OK(store().InsertExecutions(batch));
  ASSERT_OK_AND_ASSIGN(
      auto window, store().ListExecutions("p", kT0 + absl::Minutes(2), kT0 + absl::Minutes(5), 0));
  ASSERT_EQ(window.size(), 3u);  // [2, 5)
  EXPECT_EQ(window[0].time, kT0 + absl::Minutes(2));
  EXPECT_EQ(window[2].time, kT0 + absl::Minutes(4));
  ASSERT_OK_AND_ASSIGN(auto limited, store().ListExecutions("p", kT0, absl::InfiniteFuture(), 4));
  EXPECT_EQ(limited.size(), 4u);
  EXPECT_EQ(limited[3].time, kT0 + absl::Minutes(3));

  ASSERT_OK_AND_ASSIGN(int64_t pruned, store().PruneExecutions(kT0 + absl::Minutes(5), 0));
  EXPECT_EQ(pruned, 6);  // 5 of p and the one of other
  ASSERT_OK_AND_ASSIGN(
      auto rest, store().ListExecutions("p", absl::InfinitePast(), absl::InfiniteFuture(), 0));
  EXPECT_EQ(rest.size(), 5u);
  ASSERT_OK_AND_ASSIGN(int64_t one, store().PruneExecutions(absl::InfiniteFuture(), 1));
  EXPECT_EQ(one, 1);
}

// Retention walks every pipeline, whatever their names, and stops at the limit.
TEST_P(StoreConformanceTest, PruneExecutionsCoversEveryPipelineUpToTheLimit) {
  std::vector<ExecutionRecordRow> batch;
  const std::vector<std::pair<std::string, int>> old_rows = {
      {"a", 4}, {"b", 0}, {"c", 3}, {"d", 1}, {"\xe2\x82\xac-pipe", 2}};
  for (const auto& [pipeline, n] : old_rows) {
    for (int i = 0; i < n; ++i) batch.push_back(NewExecution(pipeline, kT0 + absl::Seconds(i)));
    batch.push_back(NewExecution(pipeline, kT0 + absl::Hours(2)));  // kept
  }
  ASSERT_OK(store().InsertExecutions(batch));
  ASSERT_OK_AND_ASSIGN(int64_t first, store().PruneExecutions(kT0 + absl::Hours(1), 6));
  EXPECT_EQ(first, 6);
  ASSERT_OK_AND_ASSIGN(int64_t second, store().PruneExecutions(kT0 + absl::Hours(1), 6));
  EXPECT_EQ(second, 4);
  ASSERT_OK_AND_ASSIGN(int64_t none, store().PruneExecutions(kT0 + absl::Hours(1), 6));
  EXPECT_EQ(none, 0);
  for (const auto& [pipeline, n] : old_rows) {
    ASSERT_OK_AND_ASSIGN(auto kept, store().ListExecutions(pipeline, absl::InfinitePast(),
                                                           absl::InfiniteFuture(), 0));
    ASSERT_EQ(kept.size(), 1u) << pipeline;
    EXPECT_EQ(kept[0].time, kT0 + absl::Hours(2));
  }
}

// Under a backlog larger than one call's limit, repeated prunes reach every pipeline's old
// rows (no pipeline waits for the others' backlog to clear). Times interleave, so pruning
// oldest-first and pruning round-robin across pipelines both qualify; a walk that always
// starts at the first pipeline name does not.
TEST_P(StoreConformanceTest, PruneExecutionsReachesEveryPipelineUnderABacklog) {
  std::vector<ExecutionRecordRow> batch;
  const std::vector<std::string> pipelines = {"a", "b", "c"};
  for (int i = 0; i < 15; ++i) {
    batch.push_back(NewExecution(pipelines[i % 3], kT0 + absl::Seconds(i)));
  }
  ASSERT_OK(store().InsertExecutions(batch));
  for (int call = 0; call < 3; ++call) {
    ASSERT_OK_AND_ASSIGN(int64_t pruned, store().PruneExecutions(kT0 + absl::Hours(1), 2));
    EXPECT_EQ(pruned, 2);
  }
  for (const std::string& pipeline : pipelines) {
    ASSERT_OK_AND_ASSIGN(auto left, store().ListExecutions(pipeline, absl::InfinitePast(),
                                                           absl::InfiniteFuture(), 0));
    EXPECT_LT(left.size(), 5u) << pipeline << " kept all its old rows";
  }
}

TEST_P(StoreConformanceTest, SummarizeExecutionsOverAWindow) {
  std::vector<ExecutionRecordRow> batch;
  // 100 executions of p, durations 1..100 s, every 4th a failure, quality 0..9 repeating.
  for (int i = 0; i < 100; ++i) {
    ExecutionRecordRow r = NewExecution("p", kT0 + absl::Seconds(i));
    r.duration_seconds = 100 - i;  // inserted out of duration order on purpose
    r.success = i % 4 != 0;
    r.quality_score = i % 10;
    batch.push_back(r);
  }
  ExecutionRecordRow outside = NewExecution("p", kT0 + absl::Hours(1));
  outside.duration_seconds = 1000;
  batch.push_back(outside);
  batch.push_back(NewExecution("other", kT0));
  ASSERT_OK(store().InsertExecutions(batch));

  ASSERT_OK_AND_ASSIGN(ExecutionSummary s,
                       store().SummarizeExecutions("p", kT0, kT0 + absl::Minutes(10)));
  EXPECT_EQ(s.executions, 100);
  EXPECT_EQ(s.successes, 75);
  EXPECT_DOUBLE_EQ(s.mean_quality, 4.5);
  EXPECT_DOUBLE_EQ(s.latency_p50_seconds, 50);
  EXPECT_DOUBLE_EQ(s.latency_p95_seconds, 95);
  EXPECT_DOUBLE_EQ(s.latency_p99_seconds, 99);

  ASSERT_OK_AND_ASSIGN(ExecutionSummary all,
                       store().SummarizeExecutions("p", kT0, absl::InfiniteFuture()));
  EXPECT_EQ(all.executions, 101);
  EXPECT_DOUBLE_EQ(all.latency_p99_seconds, 100);

  ASSERT_OK_AND_ASSIGN(ExecutionSummary empty,
                       store().SummarizeExecutions("nothing", kT0, absl::InfiniteFuture()));
  EXPECT_EQ(empty.executions, 0);
  EXPECT_EQ(empty.mean_quality, 0);
  EXPECT_EQ(empty.latency_p99_seconds, 0);
}

TEST_P(StoreConformanceTest, HarvestedExamplesAreStoredWithTheirExecution) {
  auto harvested = [](const std::string &record_id, const std::string &input) {
    ExecutionRecordRow r = NewExecution("pipe", kT0, record_id);
    r.harvest = NewExample(input);
    r.harvest->dataset = "pipe-harvest";
    return r;
  };
  // The dataset does not exist yet: the first harvest creates it for the pipeline.
  ASSERT_OK_AND_ASSIGN(auto first, store().InsertExecutions({harvested("r1", "a"),
                                                             harvested("r2", "a"),
                                                             harvested("r3", "b")}));
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(first[0].example_id.size(), 8u);
  EXPECT_TRUE(first[1].example_id.empty()) << "same content: a duplicate example";
  EXPECT_EQ(first[2].example_id.size(), 8u);
  ASSERT_OK_AND_ASSIGN(DatasetRecord ds, store().GetDataset("pipe-harvest"));
  EXPECT_EQ(ds.pipeline_name, "pipe");
  EXPECT_EQ(ds.example_count, 2);
  ASSERT_OK_AND_ASSIGN(ExamplePage page, store().ListExamples("pipe-harvest", 0, ""));
  ASSERT_EQ(page.examples.size(), 2u);
  EXPECT_EQ(page.examples[0].id, first[0].example_id);
  EXPECT_EQ(page.examples[0].metadata_json, R"({"source": "test"})");

  // A retried record (same record_id) is a duplicate row and harvests nothing again.
  ASSERT_OK_AND_ASSIGN(auto retry, store().InsertExecutions({harvested("r3", "c")}));
  EXPECT_TRUE(retry[0].duplicate);
  EXPECT_TRUE(retry[0].example_id.empty());
  ASSERT_OK_AND_ASSIGN(ds, store().GetDataset("pipe-harvest"));
  EXPECT_EQ(ds.example_count, 2);

  // New records whose content the dataset already holds are stored; only their example is a
  // duplicate, and the new content beside them is harvested in the same transaction.
  ASSERT_OK_AND_ASSIGN(auto again, store().InsertExecutions({harvested("r4", "b"),
                                                             harvested("r5", "d"),
                                                             harvested("r6", "a")}));
  ASSERT_EQ(again.size(), 3u);
  for (const auto &r : again) {
    EXPECT_OK(r.status);
    EXPECT_FALSE(r.duplicate);
    EXPECT_EQ(r.id.size(), 16u);
  }
  EXPECT_TRUE(again[0].example_id.empty());
  EXPECT_EQ(again[1].example_id.size(), 8u);
  EXPECT_TRUE(again[2].example_id.empty());
  ASSERT_OK_AND_ASSIGN(ds, store().GetDataset("pipe-harvest"));
  EXPECT_EQ(ds.example_count, 3);
  ASSERT_OK_AND_ASSIGN(page, store().ListExamples("pipe-harvest", 0, ""));
  EXPECT_EQ(page.examples.size(), 3u);
  ASSERT_OK_AND_ASSIGN(ExecutionSummary summary,
                       store().SummarizeExecutions("pipe", absl::InfinitePast(),
                                                   absl::InfiniteFuture()));
  EXPECT_EQ(summary.executions, 6);

  // A group commit's worth of harvests: 40 new records, 2 of them with stored content.
  std::vector<ExecutionRecordRow> many;
  for (int i = 0; i < 40; ++i) {
    many.push_back(harvested(absl::StrCat("m", i), i == 7 ? "a" : i == 30 ? "d" : absl::StrCat("m", i)));
  }
  ASSERT_OK_AND_ASSIGN(auto group, store().InsertExecutions(many));
  int examples = 0;
  for (const auto &r : group) {
    EXPECT_OK(r.status);
    examples += r.example_id.empty() ? 0 : 1;
  }
  EXPECT_EQ(examples, 38);
  EXPECT_TRUE(group[7].example_id.empty());
  EXPECT_TRUE(group[30].example_id.empty());
  ASSERT_OK_AND_ASSIGN(ds, store().GetDataset("pipe-harvest"));
  EXPECT_EQ(ds.example_count, 41);
}

TEST_P(StoreConformanceTest, LatestProgramForPipelineIsTheNewestOfAnyName) {
  EXPECT_CODE(store().GetLatestProgramForPipeline("pipe"), kNotFound);
  ASSERT_OK(store().CreateProgramVersion(NewProgram("a", kT0)));
  ASSERT_OK(store().CreateProgramVersion(NewProgram("b", kT0 + absl::Hours(2))));
  ASSERT_OK(store().CreateProgramVersion(NewProgram("a", kT0 + absl::Hours(1))));
  ProgramRecord elsewhere = NewProgram("c", kT0 + absl::Hours(3));
  elsewhere.pipeline_name = "other";
  ASSERT_OK(store().CreateProgramVersion(elsewhere));
  ASSERT_OK_AND_ASSIGN(ProgramRecord latest, store().GetLatestProgramForPipeline("pipe"));
  EXPECT_EQ(latest.name, "b");
  EXPECT_EQ(latest.created_at, kT0 + absl::Hours(2));
}

TEST_P(StoreConformanceTest, PipelineBaselinesAreReplaced) {
  EXPECT_CODE(store().GetPipelineBaseline("pipe"), kNotFound);
  ASSERT_OK(store().PutPipelineBaseline({"pipe", 0.97, 8.1, 120, kT0}));
  ASSERT_OK(store().PutPipelineBaseline({"pipe", 0.91, 7.5, 300, kT0 + absl::Hours(168)}));
  ASSERT_OK(store().PutPipelineBaseline({"other", 0.5, 1, 2, kT0}));
  ASSERT_OK_AND_ASSIGN(PipelineBaselineRecord b, store().GetPipelineBaseline("pipe"));
  EXPECT_EQ(b.success_rate, 0.91);
  EXPECT_EQ(b.mean_quality, 7.5);
  EXPECT_EQ(b.executions, 300);
  EXPECT_EQ(b.updated_at, kT0 + absl::Hours(168));
  EXPECT_CODE(store().PutPipelineBaseline({"", 1, 1, 1, kT0}), kInvalidArgument);
}

TEST_P(StoreConformanceTest, InsertManyExecutionsInOneBatch) {
  std::vector<ExecutionRecordRow> batch;
  for (int i = 0; i < 5000; ++i) {
    batch.push_back(NewExecution("bulk", kT0 + absl::Milliseconds(i), absl::StrCat("r", i)));
  }
  ASSERT_OK_AND_ASSIGN(auto results, store().InsertExecutions(batch));
  ASSERT_EQ(results.size(), batch.size());
  std::set<std::string> ids;
  for (const auto &r : results) {
    EXPECT_OK(r.status);
    ids.insert(r.id);
  }
  EXPECT_EQ(ids.size(), batch.size());
  ASSERT_OK_AND_ASSIGN(auto rows,
                       store().ListExecutions("bulk", kT0, absl::InfiniteFuture(), 100000));
  EXPECT_EQ(rows.size(), batch.size());
}

// ---------------------------------------------------------------------------------------
// LLM cache

TEST_P(StoreConformanceTest, LlmCacheGetPutOverwriteAndPrune) {
  ASSERT_OK_AND_ASSIGN(std::optional<std::string> miss, store().GetCachedLlmResponse("k1"));
  EXPECT_FALSE(miss.has_value());
  ASSERT_OK(store().PutCachedLlmResponse("k1", R"({"text": "one"})"));
  ASSERT_OK(store().PutCachedLlmResponse("k2", ""));
  ASSERT_OK_AND_ASSIGN(std::optional<std::string> hit, store().GetCachedLlmResponse("k1"));
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(*hit, R"({"text": "one"})");
  ASSERT_OK_AND_ASSIGN(std::optional<std::string> empty, store().GetCachedLlmResponse("k2"));
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(*empty, "");
  ASSERT_OK(store().PutCachedLlmResponse("k1", R"({"text": "two"})"));
  ASSERT_OK_AND_ASSIGN(hit, store().GetCachedLlmResponse("k1"));
  EXPECT_EQ(hit.value_or(""), R"({"text": "two"})");
  EXPECT_CODE(store().PutCachedLlmResponse("", "x"), kInvalidArgument);

  ASSERT_OK_AND_ASSIGN(int64_t none, store().PruneLlmCache(absl::InfinitePast(), 0));
  EXPECT_EQ(none, 0);
  ASSERT_OK_AND_ASSIGN(int64_t all, store().PruneLlmCache(absl::InfiniteFuture(), 0));
  EXPECT_EQ(all, 2);
  ASSERT_OK_AND_ASSIGN(miss, store().GetCachedLlmResponse("k1"));
  EXPECT_FALSE(miss.has_value());
}

// ---------------------------------------------------------------------------------------
// Schedules

TEST_P(StoreConformanceTest, ScheduleSlotIsClaimedOnceAcrossThreads) {
  constexpr int kThreads = 16;
  std::atomic<int> winners{0};
  std::vector<std::string> owners(kThreads);
  RunThreads(kThreads, [&](int t) {
    auto won = store().TryClaimScheduleSlot("nightly", "2024-01-01", absl::StrCat("r", t), "", kT0);
    if (!won.ok()) {
      ADD_FAILURE() << won.status();
      return;
    }
    if (*won) ++winners;
  });
  EXPECT_EQ(winners.load(), 1);
  // Forever: a later caller does not win the same slot either.
  ASSERT_OK_AND_ASSIGN(bool late, store().TryClaimScheduleSlot("nightly", "2024-01-01", "late", "",
                                                               kT0 + absl::Hours(48)));
  EXPECT_FALSE(late);
  ASSERT_OK_AND_ASSIGN(bool next, store().TryClaimScheduleSlot("nightly", "2024-01-02", "r0", "", kT0));
  EXPECT_TRUE(next);
  ASSERT_OK_AND_ASSIGN(bool other, store().TryClaimScheduleSlot("hourly", "2024-01-01", "r0", "", kT0));
  EXPECT_TRUE(other);
  EXPECT_CODE(store().TryClaimScheduleSlot("", "x", "r0", "", kT0), kInvalidArgument);
  EXPECT_CODE(store().TryClaimScheduleSlot("x", "", "r0", "", kT0), kInvalidArgument);
}

TEST_P(StoreConformanceTest, CreateJobWritesItsFirstEventInTheSameTransaction) {
  const NewJobEvent queued{"state_changed", "queued-payload"};
  bool existed = true;
  ASSERT_OK_AND_ASSIGN(JobRecord job,
                       store().CreateJob(NewJob("p", kT0, "req-first-event"), &existed, &queued));
  EXPECT_FALSE(existed);
  EXPECT_EQ(job.last_event_seq, 1);
  ASSERT_OK_AND_ASSIGN(auto events, store().ListJobEvents(job.id, 0, 0));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].seq, 1);
  EXPECT_EQ(events[0].kind, "state_changed");
  EXPECT_EQ(events[0].payload, "queued-payload");
  // The idempotent repeat adds no second event.
  ASSERT_OK_AND_ASSIGN(JobRecord again,
                       store().CreateJob(NewJob("p", kT0, "req-first-event"), &existed, &queued));
  EXPECT_TRUE(existed);
  EXPECT_EQ(again.id, job.id);
  ASSERT_OK_AND_ASSIGN(events, store().ListJobEvents(job.id, 0, 0));
  EXPECT_EQ(events.size(), 1u);
  // A worker's events follow it.
  ASSERT_OK_AND_ASSIGN(auto claimed, store().ClaimJob("w", absl::Minutes(1), kT0));
  ASSERT_TRUE(claimed.has_value());
  ASSERT_OK_AND_ASSIGN(int64_t seq, store().AppendJobEvent(job.id, LeaseOf(*claimed), "k", "",
                                                           kT0));
  EXPECT_EQ(seq, 2);
}

TEST_P(StoreConformanceTest, ScheduleSlotKeepsTheWinnersOwnerAndOutcome) {
  ASSERT_OK_AND_ASSIGN(auto none, store().GetScheduleSlot("daily", "2024-01-01"));
  EXPECT_FALSE(none.has_value());
  ASSERT_OK_AND_ASSIGN(bool won, store().TryClaimScheduleSlot("daily", "2024-01-01", "replica-a",
                                                              "skipped: healthy", kT0));
  EXPECT_TRUE(won);
  ASSERT_OK_AND_ASSIGN(bool lost, store().TryClaimScheduleSlot("daily", "2024-01-01", "replica-b",
                                                               "job x", kT0 + absl::Seconds(1)));
  EXPECT_FALSE(lost);
  ASSERT_OK_AND_ASSIGN(auto slot, store().GetScheduleSlot("daily", "2024-01-01"));
  ASSERT_TRUE(slot.has_value());
  EXPECT_EQ(slot->schedule_name, "daily");
  EXPECT_EQ(slot->slot_key, "2024-01-01");
  EXPECT_EQ(slot->owner, "replica-a");
  EXPECT_EQ(slot->outcome, "skipped: healthy");
  EXPECT_EQ(slot->claimed_at, kT0);
  ASSERT_OK_AND_ASSIGN(auto other, store().GetScheduleSlot("daily", "2024-01-02"));
  EXPECT_FALSE(other.has_value());
}

// ---------------------------------------------------------------------------------------
// Durability

TEST_P(StoreConformanceTest, ReopenedStoreSeesCommittedData) {
  ASSERT_OK_AND_ASSIGN(JobRecord job, store().CreateJob(NewJob("p", kT0, "req-durable")));
  ASSERT_OK_AND_ASSIGN(auto claimed, store().ClaimJob("w", absl::Minutes(1), kT0));
  ASSERT_TRUE(claimed.has_value());
  ASSERT_OK(store().CheckpointJob(LeaseOf(*claimed), "ckpt", "prog"));
  ASSERT_OK(store().AppendJobEvent(job.id, LeaseOf(*claimed), "k", "payload", kT0));
  ASSERT_OK(store().CreateProgramVersion(NewProgram("qa")));
  ASSERT_OK(store().PromoteProgram("qa", 1));
  ASSERT_OK(store().UpsertPipeline({"pipe", "yaml", 0, kT0}));
  ASSERT_OK(store().CreateDataset({"ds", "pipe", kT0, 0}));
  ASSERT_OK(store().AddExamples("ds", {NewExample("a")}));
  ASSERT_OK(store().InsertExecutions({NewExecution("pipe", kT0, "r1")}));
  ASSERT_OK(store().PutCachedLlmResponse("key", "value"));
  ASSERT_OK(store().TryClaimScheduleSlot("s", "slot", "me", "job j1", kT0));

  Reopen();
  ASSERT_OK_AND_ASSIGN(JobRecord got, store().GetJob(job.id));
  EXPECT_EQ(got.state, JobState::kRunning);
  EXPECT_EQ(got.checkpoint, "ckpt");
  EXPECT_EQ(got.last_event_seq, 1);
  // The lease survives the restart: the same worker can carry on, fencing still holds.
  EXPECT_OK(store().HeartbeatJob(LeaseOf(*claimed), kT0 + absl::Minutes(2)));
  bool existed = false;
  ASSERT_OK_AND_ASSIGN(JobRecord dup, store().CreateJob(NewJob("p", kT0, "req-durable"), &existed));
  EXPECT_TRUE(existed);
  EXPECT_EQ(dup.id, job.id);
  ASSERT_OK_AND_ASSIGN(auto events, store().ListJobEvents(job.id, 0, 0));
  EXPECT_EQ(events.size(), 1u);
  ASSERT_OK_AND_ASSIGN(ProgramRecord prod, store().GetProductionProgram("qa"));
  EXPECT_EQ(prod.version, 1);
  ASSERT_OK_AND_ASSIGN(PipelineRecord pipe, store().GetPipeline("pipe"));
  EXPECT_EQ(pipe.yaml, "yaml");
  ASSERT_OK_AND_ASSIGN(DatasetRecord ds, store().GetDataset("ds"));
  EXPECT_EQ(ds.example_count, 1);
  ASSERT_OK_AND_ASSIGN(auto rows, store().ListExecutions("pipe", kT0, absl::InfiniteFuture(), 0));
  EXPECT_EQ(rows.size(), 1u);
  ASSERT_OK_AND_ASSIGN(auto cached, store().GetCachedLlmResponse("key"));
  EXPECT_EQ(cached.value_or(""), "value");
  ASSERT_OK_AND_ASSIGN(bool again,
                       store().TryClaimScheduleSlot("s", "slot", "other", "", kT0));
  EXPECT_FALSE(again);
  ASSERT_OK_AND_ASSIGN(auto slot, store().GetScheduleSlot("s", "slot"));
  ASSERT_TRUE(slot.has_value());
  EXPECT_EQ(slot->owner, "me");
  EXPECT_EQ(slot->outcome, "job j1");
  EXPECT_OK(store().IntegrityCheck());
}

TEST_P(StoreConformanceTest, WritesOfOneStoreAreVisibleToAnother) {
  std::unique_ptr<Store> other = open_();
  ASSERT_TRUE(other != nullptr);
  ASSERT_OK_AND_ASSIGN(JobRecord job, store().CreateJob(NewJob()));
  ASSERT_OK_AND_ASSIGN(JobRecord seen, other->GetJob(job.id));
  EXPECT_EQ(seen.id, job.id);
  ASSERT_OK(other->RequestCancel(job.id, kT0));
  ASSERT_OK_AND_ASSIGN(JobRecord cancelled, store().GetJob(job.id));
  EXPECT_EQ(cancelled.state, JobState::kCancelled);
}

}  // namespace
}  // namespace elexirion::store::storetest
