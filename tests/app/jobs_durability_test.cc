// Durable jobs against real HTTP to the fake provider: cancel while running and while queued,
// budget exhaustion, kill -9 mid-job, a provider outage mid-job (pause, resume, give up,
// cancel while paused). The server's `claude` steps run on an anthropic instance at the fake.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "server/jobs/worker_pool.h"
#include "tests/fakes/fake_provider_server.h"
#include "tests/testutil/test_server.h"

namespace elexirion {
namespace {

using testutil::InProcessServer;
using testutil::ServerProcess;
using testutil::TempDir;

// A ChatAdapter-format answer for the code-analysis signature.
fakes::FakeResponse Answer(const fakes::RecordedRequest&) {
  return fakes::FakeResponse::Text(
      "[[ ## findings ## ]]\nno issues\n\n[[ ## recommendations ## ]]\nnone\n\n"
      "[[ ## severity ## ]]\nmedium\n\n[[ ## completed ## ]]\n");
}

class JobsDurabilityTest : public ::testing::Test {
 protected:
  // `provider_yaml` is appended to the anthropic instance's settings.
  void StartServer(int workers, absl::Duration latency,
                   absl::Duration max_provider_outage = absl::Minutes(15),
                   const std::string& provider_yaml = "") {
    auto fake = fakes::FakeProviderServer::Start();
    ASSERT_TRUE(fake.ok()) << fake.status();
    fake_ = std::move(*fake);
    fake_->SetHandler(Answer);
    fake_->SetLatency(latency);
    config::ServerConfig config = testutil::TestConfig(dir_);
    config.jobs.workers = workers;
    config.jobs.poll = absl::Milliseconds(50);
    config.jobs.heartbeat = absl::Milliseconds(100);
    config.jobs.max_provider_outage = max_provider_outage;
    std::string key = dir_.Write("anthropic.key", "sk-ant-CANARY-jobs-0001");
    config.llm = YAML::Load(
        absl::StrCat(testutil::FakeAnthropicProviders(fake_->base_url(), key), provider_yaml));
    auto server = InProcessServer::Start(config);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    client_ = server_->NewClient();
  }

  v1::OptimizeModuleRequest Request(const std::string& name) {
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
    for (const auto& f : files) {
      EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(
                      testutil::ReadFile(f.string()),
                      request.mutable_trainset()->mutable_inline_()->add_examples())
                      .ok());
    }
    request.mutable_metric()->mutable_exact_match()->set_field("severity");
    request.mutable_optimizer()->mutable_bootstrap_few_shot()->set_max_bootstrapped_demos(4);
    return request;
  }

  v1::Job Submit(const v1::OptimizeModuleRequest& request) {
    return testutil::SubmitJob(*client_, request);
  }

  v1::Job GetJob(const std::string& id) { return testutil::GetJob(*client_, id); }

  void Cancel(const std::string& id) {
    grpc::ClientContext context;
    client_->Prepare(&context);
    v1::CancelJobRequest request;
    request.set_id(id);
    v1::Job job;
    grpc::Status status = client_->optimizer().CancelJob(&context, request, &job);
    EXPECT_TRUE(status.ok()) << status.error_message();
  }

  // A StreamProgress of job `id` from its start; `context` outlives the reader.
  std::unique_ptr<grpc::ClientReader<v1::ProgressEvent>> Watch(const std::string& id,
                                                               absl::Duration deadline,
                                                               grpc::ClientContext* context) {
    client_->Prepare(context, deadline);
    v1::StreamProgressRequest request;
    request.set_job_id(id);
    return client_->optimizer().StreamProgress(context, request);
  }

  // Reads events until `stop` returns true or the stream ends.
  std::vector<v1::ProgressEvent> Stream(const std::string& id,
                                        const std::function<bool(const v1::ProgressEvent&)>& stop) {
    grpc::ClientContext context;
    auto reader = Watch(id, absl::Seconds(120), &context);
    std::vector<v1::ProgressEvent> events;
    v1::ProgressEvent event;
    while (reader->Read(&event)) {
      events.push_back(event);
      if (stop && stop(event)) {
        context.TryCancel();
        break;
      }
    }
    reader->Finish();
    return events;
  }

  static bool IsRunning(const v1::ProgressEvent& e) {
    return e.has_state_changed() && e.state_changed().state() == v1::JOB_STATE_RUNNING;
  }
  static bool IsTerminal(const v1::ProgressEvent& e) {
    return e.has_state_changed() && (e.state_changed().state() == v1::JOB_STATE_SUCCEEDED ||
                                     e.state_changed().state() == v1::JOB_STATE_FAILED ||
                                     e.state_changed().state() == v1::JOB_STATE_CANCELLED);
  }

  TempDir dir_;
  std::unique_ptr<fakes::FakeProviderServer> fake_;
  std::unique_ptr<InProcessServer> server_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(JobsDurabilityTest, CancelWhileRunningStopsPromptly) {
  StartServer(/*workers=*/2, absl::Milliseconds(300));
  v1::Job job = Submit(Request("cancel_running"));
  Stream(job.id(), IsRunning);
  // Let some calls happen before cancelling.
  while (fake_->request_count() < 3) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  auto cancelled_at = std::chrono::steady_clock::now();
  Cancel(job.id());
  auto events = Stream(job.id(), nullptr);  // follows until the job ends
  auto ended_at = std::chrono::steady_clock::now();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().state_changed().state(), v1::JOB_STATE_CANCELLED);
  EXPECT_LT(ended_at - cancelled_at, std::chrono::seconds(3));
  v1::Job ended = GetJob(job.id());
  EXPECT_EQ(ended.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(ended.end_reason(), v1::END_REASON_CANCELLED);
  // The runner returns the best program so far on cancel; it is kept, not promoted.
  EXPECT_TRUE(ended.has_result());
  // No new provider requests once the job has ended (in-flight ones were aborted or done).
  int after_end = fake_->request_count();
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  EXPECT_EQ(fake_->request_count(), after_end);
}

TEST_F(JobsDurabilityTest, CancelWhileQueuedNeverStarts) {
  StartServer(/*workers=*/1, absl::Milliseconds(300));
  v1::Job first = Submit(Request("first"));
  Stream(first.id(), IsRunning);
  v1::Job second = Submit(Request("second"));
  Cancel(second.id());
  auto events = Stream(second.id(), nullptr);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().state_changed().state(), v1::JOB_STATE_CANCELLED);
  for (const auto& e : events) EXPECT_FALSE(IsRunning(e));
  EXPECT_EQ(GetJob(second.id()).attempt(), 0);
  Cancel(first.id());
  Stream(first.id(), nullptr);
}

// A watcher that joined while the job was queued sees the cancel end its stream.
TEST_F(JobsDurabilityTest, WatcherOfAQueuedJobSeesItsCancel) {
  StartServer(/*workers=*/1, absl::Milliseconds(300));
  v1::Job first = Submit(Request("busy"));
  Stream(first.id(), IsRunning);
  v1::Job queued = Submit(Request("queued"));
  grpc::ClientContext context;
  auto reader = Watch(queued.id(), absl::Seconds(20), &context);
  v1::ProgressEvent event;
  ASSERT_TRUE(reader->Read(&event));  // the queued event: the watcher is live now
  EXPECT_EQ(event.state_changed().state(), v1::JOB_STATE_QUEUED);
  Cancel(queued.id());
  ASSERT_TRUE(reader->Read(&event)) << "the cancel never reached the watcher";
  EXPECT_EQ(event.state_changed().state(), v1::JOB_STATE_CANCELLED);
  EXPECT_FALSE(reader->Read(&event));
  EXPECT_TRUE(reader->Finish().ok());
  Cancel(first.id());
  Stream(first.id(), nullptr);
}

// This replica's memory of a job can fall behind the store: the job moved to another
// replica, whose events only reach here through the relay (a notification, or a sweep
// every 5 s). A new watcher must then get what the store has at once, not the stale memory
// and a wait. Here the memory holds event 1 and the store events 1 and 2.
TEST_F(JobsDurabilityTest, WatcherDoesNotReplayMemoryThatIsBehindTheStore) {
  // The busy job's calls outlast the test: the queued one stays queued, nothing is published.
  StartServer(/*workers=*/1, absl::Seconds(5));
  v1::Job first = Submit(Request("busy"));
  Stream(first.id(), IsRunning);
  v1::Job queued = Submit(Request("behind"));
  auto* store = server_->server().store();
  auto stored = store->ListJobEvents(queued.id(), 0, 10);
  ASSERT_TRUE(stored.ok()) << stored.status();
  ASSERT_EQ(stored->size(), 1u);
  server_->server().bus()->Publish(*jobs::EventFromRecord(stored->front()));
  v1::ProgressEvent usage;
  usage.mutable_usage()->set_eta_seconds(7);
  ASSERT_TRUE(store
                  ->AppendJobEvent(queued.id(), std::nullopt, "usage", usage.SerializeAsString(),
                                   absl::Now())
                  .ok());

  grpc::ClientContext context;
  auto reader = Watch(queued.id(), absl::Seconds(2), &context);
  v1::ProgressEvent event;
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.seq(), 1);
  ASSERT_TRUE(reader->Read(&event)) << "event 2 is in the store";
  EXPECT_EQ(event.seq(), 2);
  EXPECT_EQ(event.usage().eta_seconds(), 7);
  context.TryCancel();
  Cancel(queued.id());
  Cancel(first.id());
  Stream(first.id(), nullptr);
}

TEST_F(JobsDurabilityTest, BudgetExhaustionEndsWithBestSoFar) {
  StartServer(/*workers=*/1, absl::Milliseconds(20));
  v1::OptimizeModuleRequest request = Request("budget");
  request.mutable_budget()->set_max_llm_calls(5);
  v1::Job job = Submit(request);
  auto events = Stream(job.id(), nullptr);
  v1::Job ended = GetJob(job.id());
  EXPECT_EQ(ended.end_reason(), v1::END_REASON_BUDGET_EXHAUSTED) << ended.DebugString();
  EXPECT_TRUE(ended.has_result());
  EXPECT_LE(fake_->request_count(), 5 + 8);  // budget + num_threads in flight
}

// kill -9 of the server process mid-job; a new process on the same SQLite file reclaims the job
// once its lease expires, resumes from the checkpoint and ends it exactly once.
//
// The fake answers after 100 ms and logs when each answer went out, so finished work is known
// exactly: none of it may reach the provider again. `configure` sets the optimizer on a job of
// 40 training examples (the bundled 20, twice with distinct code) and 10 validation ones, run
// two calls at a time; `far_enough` says when enough finished work is durable to kill.
class KillNineTest : public JobsDurabilityTest {
 protected:
  void KillNineAndResume(const std::string& name,
                         const std::function<void(v1::OptimizeModuleRequest&)>& configure,
                         const std::function<bool(const v1::ProgressEvent&)>& far_enough,
                         bool only_replays_hit_the_cache = true) {
    auto fake = fakes::FakeProviderServer::Start();
    ASSERT_TRUE(fake.ok()) << fake.status();
    fake_ = std::move(*fake);
    absl::Mutex answered_mu;
    std::vector<std::pair<std::string, absl::Time>> answered;  // body, when the answer went out
    fake_->SetHandler([&](const fakes::RecordedRequest& r) {
      absl::SleepFor(absl::Milliseconds(100));
      absl::MutexLock lock(&answered_mu);
      answered.emplace_back(r.body, absl::Now());
      return Answer(r);
    });
    std::string key = dir_.Write("anthropic.key", "sk-ant-CANARY-jobs-0002");
    std::string config_file = dir_.Write(
        "config.yaml", absl::StrCat(testutil::FakeAnthropicProviders(fake_->base_url(), key),
                                    "step_types:\n  claude: anthropic\n"));
    std::vector<std::string> args = {"--config",
                                     config_file,
                                     "--grpc.listen=127.0.0.1:0",
                                     "--http.listen=127.0.0.1:0",
                                     "--store.sqlite_path=" + dir_.File("db.sqlite"),
                                     "--jobs.lease=2s",
                                     "--jobs.heartbeat=500ms",
                                     "--jobs.poll=100ms",
                                     "--jobs.workers=1"};
    auto first = ServerProcess::Start(args);
    ASSERT_TRUE(first.ok()) << first.status();
    auto connect = [this](const std::string& address) {
      client::Client::Options options;
      options.address = address;
      auto client = client::Client::Create(options);
      EXPECT_TRUE(client.ok()) << client.status();
      client_ = std::move(*client);
    };
    connect((*first)->address());

    constexpr int kValidation = 10;
    constexpr int kThreads = 2;
    v1::OptimizeModuleRequest request = Request(name);
    const auto bundled = request.trainset().inline_().examples();
    request.mutable_trainset()->mutable_inline_()->clear_examples();
    for (int copy = 0; copy < 3; ++copy) {
      for (const auto& e : bundled) {
        v1::Example example = e;
        example.set_id(absl::StrCat(e.id(), "-", copy));
        auto& code = (*example.mutable_input()->mutable_fields())["code"];
        code.set_string_value(absl::StrCat("# copy ", copy, "\n", code.string_value()));
        auto* set = copy < 2 ? request.mutable_trainset() : request.mutable_valset();
        if (copy < 2 || request.valset().inline_().examples_size() < kValidation) {
          *set->mutable_inline_()->add_examples() = example;
        }
      }
    }
    configure(request);
    request.mutable_optimizer()->set_num_threads(kThreads);
    v1::Job job = Submit(request);
    bool reached = false;
    Stream(job.id(), [&](const v1::ProgressEvent& e) { return reached = far_enough(e); });
    ASSERT_TRUE(reached);
    (*first)->Signal(SIGKILL);
    const absl::Time killed_at = absl::Now();
    const std::vector<fakes::RecordedRequest> before = fake_->requests();
    const size_t before_count = before.size();
    std::map<std::string, int> sent_before;
    for (const auto& r : before) ++sent_before[r.body];
    // Answers that went out well before the kill reached the server (the margin covers the
    // trip back): finished work.
    std::set<std::string> finished;
    size_t answered_before = 0;  // every answer out before the kill, finished or not
    {
      absl::MutexLock lock(&answered_mu);
      for (const auto& [body, at] : answered) {
        if (at < killed_at - absl::Milliseconds(300)) finished.insert(body);
        if (at < killed_at) ++answered_before;
      }
    }
    ASSERT_GE(finished.size(), static_cast<size_t>(kValidation + 5));

    auto second = ServerProcess::Start(args);
    ASSERT_TRUE(second.ok()) << second.status();
    connect((*second)->address());
    auto events = Stream(job.id(), nullptr);
    v1::Job ended = GetJob(job.id());
    ASSERT_EQ(ended.state(), v1::JOB_STATE_SUCCEEDED) << ended.DebugString();
    EXPECT_EQ(ended.attempt(), 2);
    EXPECT_TRUE(ended.has_result());
    int terminal = 0;
    for (const auto& e : events) {
      if (e.has_state_changed() && (e.state_changed().state() == v1::JOB_STATE_SUCCEEDED ||
                                    e.state_changed().state() == v1::JOB_STATE_FAILED ||
                                    e.state_changed().state() == v1::JOB_STATE_CANCELLED)) {
        ++terminal;
      }
    }
    EXPECT_EQ(terminal, 1);

    const auto all = fake_->requests();
    std::set<std::string> distinct_after, distinct_all;
    int repeated = 0;  // bodies sent before the kill and again after it
    for (size_t i = 0; i < all.size(); ++i) {
      distinct_all.insert(all[i].body);
      if (i < before_count) continue;
      distinct_after.insert(all[i].body);
      EXPECT_EQ(finished.count(all[i].body), 0u) << "finished work sent again: request " << i;
      auto it = sent_before.find(all[i].body);
      if (it != sent_before.end() && it->second > 0) {
        ++repeated;
        --it->second;
      }
    }
    // The distinct requests of the whole job are what a full run sends; after the restart
    // only the unfinished part went out.
    EXPECT_LE(distinct_after.size() + finished.size(), distinct_all.size());
    // Only calls in flight at the kill (at most the job's parallelism) go out again.
    EXPECT_LE(repeated, kThreads);
    // The resumed attempt takes finished work from its checkpoint instead of redoing it
    // through the LLM cache: at least the baseline's validation runs were not run again (a
    // rerun of the whole job would have a cache hit for every answer sent before the kill).
    // (Only for optimizers whose uninterrupted run has no cache hits of its own; GEPA's final
    // evaluation of the unchanged seed, for one, is answered from the cache.)
    if (only_replays_hit_the_cache) {
      EXPECT_LE(ended.progress().usage().cache_hits() + kValidation,
                static_cast<int64_t>(answered_before));
    }
    std::printf(
        "kill -9 (%s): %zu requests before the kill (%zu answered, %zu finished), %zu after (%zu "
        "distinct, %d repeated), %zu distinct in the whole job, %lld cache hits after the "
        "restart\n",
        name.c_str(), before_count, answered_before, finished.size(), all.size() - before_count,
        distinct_after.size(), repeated, distinct_all.size(),
        static_cast<long long>(ended.progress().usage().cache_hits()));
    (*second)->Signal(SIGTERM);
  }
};

// Killed mid-bootstrap after real finished work: the baseline (10 validation runs, journaled
// in the checkpoint) and 16 bootstrapped examples (their answers in the persistent cache).
// Every training example is bootstrapped (only "medium" traces pass, so the demo quota is
// never met): about 3 s of provider time for a full run.
TEST_F(KillNineTest, BootstrapResumesWithoutRepeatingFinishedWork) {
  KillNineAndResume(
      "killed",
      [](v1::OptimizeModuleRequest& r) {
        r.mutable_optimizer()->mutable_bootstrap_few_shot()->set_max_bootstrapped_demos(100);
      },
      [](const v1::ProgressEvent& e) { return e.has_bootstrap() && e.bootstrap().done() >= 16; });
}

// GEPA killed after 4 finished iterations (each: the parent on a minibatch of 3, a reflection
// call, the child on the same minibatch); the resumed attempt replays them from the
// checkpoint.
TEST_F(KillNineTest, GepaResumesWithoutRepeatingFinishedWork) {
  KillNineAndResume(
      "killed_gepa",
      [](v1::OptimizeModuleRequest& r) {
        r.mutable_optimizer()->mutable_gepa()->set_max_metric_calls(130);
      },
      [](const v1::ProgressEvent& e) {
        return e.has_iteration() && e.iteration().iteration() >= 4;
      },
      /*only_replays_hit_the_cache=*/false);
}

// Issue 13 item 1: a provider outage pauses a running job instead of failing it. The fake
// provider is stopped mid-job and started again on the same port; the instance cools down
// after 2 failed attempts for 1 s.
class ProviderOutageTest : public JobsDurabilityTest {
 protected:
  void SetUp() override {
    StartServer(1, absl::Milliseconds(200), max_outage_,
                "    max_retries: 1\n    connect_timeout: 1s\n    cooldown_after_failures: 2\n"
                "    cooldown: 1s\n");
    port_ = fake_->port();
  }

  // The provider comes back on the same port.
  void RestartProvider() {
    fakes::FakeProviderServer::Options options;
    options.port = port_;
    options.latency = absl::Milliseconds(200);
    auto fake = fakes::FakeProviderServer::Start(options);
    ASSERT_TRUE(fake.ok()) << fake.status();
    restarted_ = std::move(*fake);
    restarted_->SetHandler(Answer);
  }

  // A BootstrapRandomSearch job; once it finished some work the provider goes away (nothing
  // listens on its port any more); returns when the job reported the pause.
  v1::Job RunUntilPaused() {
    v1::OptimizeModuleRequest request = Request("outage");
    auto* search = request.mutable_optimizer()->mutable_bootstrap_random_search();
    search->set_num_candidate_programs(2);
    search->set_max_bootstrapped_demos(3);
    request.mutable_optimizer()->set_num_threads(2);
    v1::Job job = Submit(request);
    int done = 0;
    Stream(job.id(), [&](const v1::ProgressEvent& e) {
      if (e.has_bootstrap()) done = std::max(done, e.bootstrap().done());
      return done >= 2 || IsTerminal(e);
    });
    EXPECT_GE(done, 2);
    fake_->Stop();
    bool paused = false;
    Stream(job.id(), [&](const v1::ProgressEvent& e) {
      paused = paused || e.has_provider_wait();
      return paused || IsTerminal(e);
    });
    EXPECT_TRUE(paused) << "no provider_wait event";
    return job;
  }

  absl::Duration max_outage_ = absl::Minutes(15);
  int port_ = 0;
  std::unique_ptr<fakes::FakeProviderServer> restarted_;
};

// Gone for longer than the cooldown: the job pauses (event and GetJob), resumes when the
// provider is back and succeeds on its first attempt without sending a finished request
// again. (It used to fail: "bootstrap: N errors (max_errors=...); last: ... cooling down".)
TEST_F(ProviderOutageTest, OutagePausesTheJobWhichResumesWhenTheProviderIsBack) {
  v1::Job job = RunUntilPaused();
  v1::Job paused = GetJob(job.id());
  EXPECT_EQ(paused.state(), v1::JOB_STATE_RUNNING);
  ASSERT_TRUE(paused.progress().has_provider_wait()) << paused.DebugString();
  const v1::ProviderWait& wait = paused.progress().provider_wait();
  EXPECT_FALSE(wait.reason().empty());
  EXPECT_EQ(wait.reason().find("CANARY"), std::string::npos);
  EXPECT_GE(wait.next_probe().seconds(), wait.since().seconds());
  EXPECT_EQ(wait.give_up_at().seconds() - wait.since().seconds(), 15 * 60);

  absl::SleepFor(absl::Seconds(3));  // longer than the 1 s cooldown: several failed probes
  RestartProvider();
  auto events = Stream(job.id(), IsTerminal);
  v1::Job ended = GetJob(job.id());
  ASSERT_EQ(ended.state(), v1::JOB_STATE_SUCCEEDED) << ended.error();
  EXPECT_EQ(ended.attempt(), 1);
  EXPECT_FALSE(ended.progress().has_provider_wait());
  bool resumed = false;
  for (const auto& e : events) resumed = resumed || e.has_provider_resumed();
  EXPECT_TRUE(resumed) << "no provider_resumed event";

  // Requests the stopped provider answered are finished work: never sent again.
  std::set<std::string> finished;
  for (const auto& r : fake_->requests()) {
    if (r.answered) finished.insert(r.body);
  }
  ASSERT_FALSE(finished.empty());
  const auto after = restarted_->requests();
  EXPECT_FALSE(after.empty());
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(finished.count(after[i].body), 0u) << "finished request sent again: " << i;
  }
}

class ShortProviderOutageLimitTest : public ProviderOutageTest {
 protected:
  void SetUp() override {
    max_outage_ = absl::Seconds(3);
    ProviderOutageTest::SetUp();
  }
};

// A provider that never comes back fails the job after jobs.max_provider_outage, saying so.
TEST_F(ShortProviderOutageLimitTest, JobFailsAfterMaxProviderOutage) {
  v1::Job job = RunUntilPaused();
  Stream(job.id(), IsTerminal);
  v1::Job ended = GetJob(job.id());
  ASSERT_EQ(ended.state(), v1::JOB_STATE_FAILED);
  EXPECT_NE(ended.error().find("jobs.max_provider_outage"), std::string::npos) << ended.error();
  EXPECT_NE(ended.error().find("provider unavailable"), std::string::npos) << ended.error();
  EXPECT_EQ(ended.attempt(), 1);
}

// CancelJob works while the job is paused.
TEST_F(ProviderOutageTest, CancelWhilePaused) {
  v1::Job job = RunUntilPaused();
  Cancel(job.id());
  Stream(job.id(), IsTerminal);
  v1::Job ended = GetJob(job.id());
  EXPECT_EQ(ended.state(), v1::JOB_STATE_CANCELLED) << ended.error();
}

}  // namespace
}  // namespace elexirion
