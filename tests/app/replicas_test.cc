// Several elexirion-server processes on one real PostgreSQL server (started by the test), LLM
// calls over real HTTP to the fake provider: jobs submitted round-robin survive a replica's
// SIGKILL (each ends succeeded once, saves its program once, repeats no finished LLM call),
// a watcher on one replica follows a job running on another live, and /readyz follows the
// database's availability.
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_provider_server.h"
#include "tests/testutil/postgres_server.h"
#include "tests/testutil/test_server.h"

namespace elexirion {
namespace {

using testutil::ServerProcess;

fakes::FakeResponse Answer() {
  return fakes::FakeResponse::Text(
      "[[ ## findings ## ]]\nno issues\n\n[[ ## recommendations ## ]]\nnone\n\n"
      "[[ ## severity ## ]]\nmedium\n\n[[ ## completed ## ]]\n");
}

bool IsTerminal(const v1::ProgressEvent& e) {
  if (!e.has_state_changed()) return false;
  const v1::JobState s = e.state_changed().state();
  return s == v1::JOB_STATE_SUCCEEDED || s == v1::JOB_STATE_FAILED || s == v1::JOB_STATE_CANCELLED;
}

bool Ended(const v1::Job& job) {
  return job.state() == v1::JOB_STATE_SUCCEEDED || job.state() == v1::JOB_STATE_FAILED ||
         job.state() == v1::JOB_STATE_CANCELLED;
}

class ReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pg = testutil::PostgresServer::Start();
    ASSERT_TRUE(pg.ok()) << pg.status();
    pg_ = std::move(*pg);
    auto dsn = pg_->CreateDatabase();
    ASSERT_TRUE(dsn.ok()) << dsn.status();
    dsn_ = *dsn;
    auto fake = fakes::FakeProviderServer::Start();
    ASSERT_TRUE(fake.ok()) << fake.status();
    fake_ = std::move(*fake);
    fake_->SetHandler([this](const fakes::RecordedRequest& r) {
      absl::SleepFor(latency_);
      absl::MutexLock lock(&answered_mu_);
      answered_.emplace_back(r.body, absl::Now());
      return Answer();
    });
    std::string key = dir_.Write("anthropic.key", "sk-ant-CANARY-replicas-0001");
    config_file_ = dir_.Write("config.yaml",
                              absl::StrCat(testutil::FakeAnthropicProviders(fake_->base_url(), key),
                                           "step_types:\n  claude: anthropic\n"));
  }

  std::vector<std::string> ReplicaArgs(int workers) const {
    return {"--config",
            config_file_,
            "--grpc.listen=127.0.0.1:0",
            "--http.listen=127.0.0.1:0",
            "--store.driver=postgres",
            "--store.postgres_dsn=" + dsn_,
            "--jobs.lease=2s",
            "--jobs.heartbeat=500ms",
            "--jobs.poll=100ms",
            absl::StrCat("--jobs.workers=", workers)};
  }

  void StartReplica(int workers = 2) {
    auto process = ServerProcess::Start(ReplicaArgs(workers), absl::Seconds(60));
    ASSERT_TRUE(process.ok()) << process.status();
    client::Client::Options options;
    options.address = (*process)->address();
    options.deadline = absl::Seconds(20);
    auto client = client::Client::Create(options);
    ASSERT_TRUE(client.ok()) << client.status();
    replicas_.push_back(std::move(*process));
    clients_.push_back(std::move(*client));
  }

  // A BootstrapFewShot job over the bundled examples; `tag` keeps its LLM requests apart
  // from other jobs' (no shared cache entries).
  static v1::OptimizeModuleRequest Request(const std::string& name, const std::string& tag,
                                           int examples, int threads) {
    v1::OptimizeModuleRequest request;
    request.mutable_pipeline()->set_yaml(
        testutil::ReadFile(testutil::CodeAnalysisExample("pipeline.yaml")));
    request.set_program_name(name);
    std::vector<std::filesystem::path> files;
    for (const auto& e :
         std::filesystem::directory_iterator(testutil::CodeAnalysisExample("examples"))) {
      files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (size_t i = 0; i < files.size() && static_cast<int>(i) < examples; ++i) {
      v1::Example* example = request.mutable_trainset()->mutable_inline_()->add_examples();
      EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(testutil::ReadFile(files[i].string()),
                                                              example)
                      .ok());
      auto& code = (*example->mutable_input()->mutable_fields())["code"];
      code.set_string_value(absl::StrCat("# ", tag, "\n", code.string_value()));
    }
    request.mutable_metric()->mutable_exact_match()->set_field("severity");
    // Only "medium" traces pass, so every example is bootstrapped: steady work.
    request.mutable_optimizer()->mutable_bootstrap_few_shot()->set_max_bootstrapped_demos(100);
    request.mutable_optimizer()->set_num_threads(threads);
    return request;
  }

  // Every event of a job through `client`, from after_seq 0 until the stream ends.
  static std::vector<v1::ProgressEvent> Stream(const client::Client& client, const std::string& id,
                                               grpc::Status* status) {
    grpc::ClientContext context;
    client.Prepare(&context, absl::Seconds(90));
    v1::StreamProgressRequest request;
    request.set_job_id(id);
    auto reader = client.optimizer().StreamProgress(&context, request);
    std::vector<v1::ProgressEvent> events;
    v1::ProgressEvent event;
    while (reader->Read(&event)) events.push_back(event);
    *status = reader->Finish();
    return events;
  }

  testutil::TempDir dir_;
  std::unique_ptr<testutil::PostgresServer> pg_;
  std::string dsn_;
  std::unique_ptr<fakes::FakeProviderServer> fake_;
  absl::Duration latency_ = absl::Milliseconds(50);
  absl::Mutex answered_mu_;
  std::vector<std::pair<std::string, absl::Time>> answered_ ABSL_GUARDED_BY(answered_mu_);
  std::string config_file_;
  std::vector<std::unique_ptr<ServerProcess>> replicas_;
  std::vector<std::unique_ptr<client::Client>> clients_;
};

TEST_F(ReplicasTest, ThirtyJobsRoundRobinSurviveAReplicaKilledMidRun) {
  constexpr int kReplicas = 3, kJobs = 30, kWorkers = 2, kThreads = 2;
  for (int i = 0; i < kReplicas; ++i) StartReplica(kWorkers);
  std::vector<std::string> ids;
  for (int i = 0; i < kJobs; ++i) {
    const auto& client = *clients_[static_cast<size_t>(i % kReplicas)];
    v1::Job job = testutil::SubmitJob(
        client, Request(absl::StrCat("replicated_", i), absl::StrCat("job ", i), 12, kThreads));
    ASSERT_FALSE(job.id().empty());
    ids.push_back(job.id());
  }
  // Kill replica 1 while it runs jobs, after real work has finished everywhere.
  const absl::Time wait_until = absl::Now() + absl::Seconds(60);
  int succeeded = 0;
  while (absl::Now() < wait_until && succeeded < 6) {
    succeeded = 0;
    for (const auto& id : ids) {
      if (testutil::GetJob(*clients_[0], id).state() == v1::JOB_STATE_SUCCEEDED) ++succeeded;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_GE(succeeded, 6);
  ASSERT_LT(succeeded, kJobs) << "the kill must land mid-run";
  const int signal_status = replicas_[1]->Signal(SIGKILL);
  ASSERT_TRUE(WIFSIGNALED(signal_status));
  const absl::Time killed_at = absl::Now();
  const std::vector<fakes::RecordedRequest> before = fake_->requests();
  std::map<std::string, int> sent_before;
  for (const auto& r : before) ++sent_before[r.body];
  std::set<std::string> finished;  // answered well before the kill: finished work
  {
    absl::MutexLock lock(&answered_mu_);
    for (const auto& [body, at] : answered_) {
      if (at < killed_at - absl::Milliseconds(300)) finished.insert(body);
    }
  }

  // Every job ends, on the surviving replicas (the killed one's after its leases expire).
  std::vector<v1::Job> ended(ids.size());
  const absl::Time deadline = absl::Now() + absl::Seconds(180);
  for (size_t i = 0; i < ids.size(); ++i) {
    while (absl::Now() < deadline) {
      ended[i] = testutil::GetJob(*clients_[i % 2 == 0 ? 0 : 2], ids[i]);
      if (Ended(ended[i])) break;
      absl::SleepFor(absl::Milliseconds(100));
    }
    ASSERT_EQ(ended[i].state(), v1::JOB_STATE_SUCCEEDED) << ended[i].DebugString();
  }

  int resumed = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ended[i].attempt() > 1) ++resumed;
    // Exactly one terminal event, the last one, in a gap-free sequence.
    grpc::Status status;
    auto events = Stream(*clients_[0], ids[i], &status);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(events.size(), static_cast<size_t>(ended[i].last_event_seq()));
    int terminal = 0;
    for (size_t k = 0; k < events.size(); ++k) {
      EXPECT_EQ(events[k].seq(), static_cast<int64_t>(k + 1));
      if (IsTerminal(events[k])) ++terminal;
    }
    EXPECT_EQ(terminal, 1) << ids[i];
    EXPECT_TRUE(IsTerminal(events.back()));
    // The program was saved once, however often the job was attempted.
    grpc::ClientContext context;
    clients_[2]->Prepare(&context);
    v1::ListProgramsRequest list;
    list.set_name(absl::StrCat("replicated_", i));
    v1::ListProgramsResponse programs;
    ASSERT_TRUE(clients_[2]->programs().ListPrograms(&context, list, &programs).ok());
    EXPECT_EQ(programs.programs_size(), 1) << list.name();
  }
  EXPECT_GE(resumed, 1) << "the killed replica was running jobs; another must have resumed them";

  // Finished LLM work is never sent again; only calls in flight on the killed replica (at
  // most its workers x threads) may be repeated.
  const auto all = fake_->requests();
  int repeated = 0;
  for (size_t i = before.size(); i < all.size(); ++i) {
    EXPECT_EQ(finished.count(all[i].body), 0u) << "finished work sent again: request " << i;
    auto it = sent_before.find(all[i].body);
    if (it != sent_before.end() && it->second > 0) {
      ++repeated;
      --it->second;
    }
  }
  EXPECT_LE(repeated, kWorkers * kThreads);
  std::printf(
      "replicas: %d jobs, %d resumed after the kill, %zu requests before the kill, "
      "%zu after, %d repeated\n",
      kJobs, resumed, before.size(), all.size() - before.size(), repeated);
}

// The job runs on replica B (the only one when it is claimed); the watcher is on replica A,
// started later, which never runs it: every event A streams after its replay comes through
// the store's notifications. Without them the stream would stop at the replay and never see
// the terminal event.
TEST_F(ReplicasTest, WatcherOnOneReplicaFollowsAJobRunningOnAnotherLive) {
  latency_ = absl::Milliseconds(100);
  StartReplica(/*workers=*/1);  // B
  v1::Job job = testutil::SubmitJob(*clients_[0], Request("watched", "watched", 20, 1));
  ASSERT_FALSE(job.id().empty());
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline &&
         testutil::GetJob(*clients_[0], job.id()).state() != v1::JOB_STATE_RUNNING) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  StartReplica(/*workers=*/1);  // A: the job is leased to B
  grpc::Status status;
  const int64_t seen_at_join = testutil::GetJob(*clients_[1], job.id()).last_event_seq();
  auto events = Stream(*clients_[1], job.id(), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  v1::Job ended = testutil::GetJob(*clients_[1], job.id());
  ASSERT_EQ(ended.state(), v1::JOB_STATE_SUCCEEDED) << ended.DebugString();
  EXPECT_EQ(ended.attempt(), 1) << "the job must have run on B alone";
  ASSERT_EQ(events.size(), static_cast<size_t>(ended.last_event_seq()));
  for (size_t k = 0; k < events.size(); ++k) {
    ASSERT_EQ(events[k].seq(), static_cast<int64_t>(k + 1)) << "at position " << k;
  }
  EXPECT_TRUE(IsTerminal(events.back()));
  EXPECT_EQ(events.back().state_changed().state(), v1::JOB_STATE_SUCCEEDED);
  // Most of the job happened after the watcher joined.
  EXPECT_GT(ended.last_event_seq(), seen_at_join + 10);
}

// Readiness fails while the database is down and recovers with it; the process stays up.
TEST_F(ReplicasTest, ReadinessFollowsTheDatabase) {
  StartReplica(/*workers=*/1);
  const int port = replicas_[0]->http_port();
  auto ready = [&](int want) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      auto got = testutil::HttpGet(port, "/readyz");
      if (got.ok() && got->first == want) return true;
      absl::SleepFor(absl::Milliseconds(100));
    }
    return false;
  };
  EXPECT_TRUE(ready(200));
  ASSERT_TRUE(pg_->Stop().ok());
  EXPECT_TRUE(ready(503)) << "readiness must fail while PostgreSQL is down";
  auto healthz = testutil::HttpGet(port, "/healthz");
  ASSERT_TRUE(healthz.ok());
  EXPECT_EQ(healthz->first, 200) << "liveness does not depend on the database";
  ASSERT_TRUE(pg_->Restart().ok());
  EXPECT_TRUE(ready(200)) << "readiness must recover when PostgreSQL is back";
  // And the replica works again.
  v1::Job job = testutil::SubmitJob(*clients_[0], Request("after_outage", "after", 4, 1));
  EXPECT_FALSE(job.id().empty());
}

}  // namespace
}  // namespace elexirion
