// Durable jobs against real HTTP to the fake provider: cancel while running and while queued,
// budget exhaustion. The server's `claude` steps run on an anthropic instance at the fake.
#include <signal.h>

#include <algorithm>
#include <map>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_provider_server.h"
#include "tests/testutil/test_server.h"

namespace elexirion {
namespace {

using testutil::InProcessServer;
using testutil::ServerProcess;
using testutil::TempDir;

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Example(const std::string& name) {
  return testutil::SourcePath("examples/code_analysis/" + name);
}

// A ChatAdapter-format answer for the code-analysis signature.
fakes::FakeResponse Answer(const fakes::RecordedRequest&) {
  return fakes::FakeResponse::Text(
      "[[ ## findings ## ]]\nno issues\n\n[[ ## recommendations ## ]]\nnone\n\n"
      "[[ ## severity ## ]]\nmedium\n\n[[ ## completed ## ]]\n");
}

class JobsDurabilityTest : public ::testing::Test {
 protected:
  void StartServer(int workers, absl::Duration latency) {
    auto fake = fakes::FakeProviderServer::Start();
    ASSERT_TRUE(fake.ok()) << fake.status();
    fake_ = std::move(*fake);
    fake_->SetHandler(Answer);
    fake_->SetLatency(latency);
    config::ServerConfig config = testutil::TestConfig(dir_);
    config.jobs.workers = workers;
    config.jobs.poll = absl::Milliseconds(50);
    config.jobs.heartbeat = absl::Milliseconds(100);
    std::string key = dir_.Write("anthropic.key", "sk-ant-CANARY-jobs-0001");
    config.llm = YAML::Load(absl::StrCat(
        "providers:\n  anthropic:\n    kind: anthropic\n    base_url: ", fake_->base_url(),
        "\n    api_key_file: ", key, "\n    retry_base_delay: 10ms\n"));
    auto server = InProcessServer::Start(config);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    client_ = server_->NewClient();
  }

  v1::OptimizeModuleRequest Request(const std::string& name) {
    v1::OptimizeModuleRequest request;
    request.mutable_pipeline()->set_yaml(Read(Example("pipeline.yaml")));
    request.set_program_name(name);
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(Example("examples"))) {
      files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(
                      Read(f.string()),
                      request.mutable_trainset()->mutable_inline_()->add_examples())
                      .ok());
    }
    request.mutable_metric()->mutable_exact_match()->set_field("severity");
    request.mutable_optimizer()->mutable_bootstrap_few_shot()->set_max_bootstrapped_demos(4);
    return request;
  }

  v1::Job Submit(const v1::OptimizeModuleRequest& request) {
    grpc::ClientContext context;
    client_->Prepare(&context);
    v1::Job job;
    grpc::Status status = client_->optimizer().OptimizeModule(&context, request, &job);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return job;
  }

  v1::Job GetJob(const std::string& id) {
    grpc::ClientContext context;
    client_->Prepare(&context);
    v1::GetJobRequest request;
    request.set_id(id);
    v1::Job job;
    EXPECT_TRUE(client_->optimizer().GetJob(&context, request, &job).ok());
    return job;
  }

  void Cancel(const std::string& id) {
    grpc::ClientContext context;
    client_->Prepare(&context);
    v1::CancelJobRequest request;
    request.set_id(id);
    v1::Job job;
    grpc::Status status = client_->optimizer().CancelJob(&context, request, &job);
    EXPECT_TRUE(status.ok()) << status.error_message();
  }

  // Reads events until `stop` returns true or the stream ends.
  std::vector<v1::ProgressEvent> Stream(
      const std::string& id, const std::function<bool(const v1::ProgressEvent&)>& stop) {
    grpc::ClientContext context;
    client_->Prepare(&context, absl::Seconds(120));
    v1::StreamProgressRequest request;
    request.set_job_id(id);
    auto reader = client_->optimizer().StreamProgress(&context, request);
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
TEST_F(JobsDurabilityTest, KillNineMidJobResumesWithoutRepeatingFinishedWork) {
  auto fake = fakes::FakeProviderServer::Start();
  ASSERT_TRUE(fake.ok()) << fake.status();
  fake_ = std::move(*fake);
  fake_->SetHandler(Answer);
  fake_->SetLatency(absl::Milliseconds(100));
  std::string key = dir_.Write("anthropic.key", "sk-ant-CANARY-jobs-0002");
  std::string config_file = dir_.Write(
      "config.yaml", absl::StrCat("providers:\n  anthropic:\n    kind: anthropic\n    base_url: ",
                                  fake_->base_url(), "\n    api_key_file: ", key,
                                  "\n    retry_base_delay: 10ms\n"
                                  "step_types:\n  claude: anthropic\n"));
  std::vector<std::string> args = {"--config", config_file, "--grpc.listen=127.0.0.1:0",
                                   "--http.listen=127.0.0.1:0",
                                   "--store.sqlite_path=" + dir_.File("db.sqlite"),
                                   "--jobs.lease=2s", "--jobs.heartbeat=500ms",
                                   "--jobs.poll=100ms", "--jobs.workers=1"};
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
  v1::Job job = Submit(Request("killed"));
  // Wait for some finished bootstrap progress (finished, checkpointed units of work).
  int progress_events = 0;
  Stream(job.id(), [&](const v1::ProgressEvent& e) {
    if (e.has_bootstrap() || e.has_trial_finished()) ++progress_events;
    return progress_events >= 3;
  });
  ASSERT_GE(progress_events, 3);
  (*first)->Signal(SIGKILL);
  const std::vector<fakes::RecordedRequest> before = fake_->requests();
  const size_t before_count = before.size();
  std::map<std::string, int> answered_before;
  for (const auto& r : before) ++answered_before[r.body];

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

  // Requests answered before the kill are not sent again, except those in flight at the kill
  // (at most the optimizer's parallelism, 8 by default).
  const auto all = fake_->requests();
  int repeated = 0;
  for (size_t i = before_count; i < all.size(); ++i) {
    auto it = answered_before.find(all[i].body);
    if (it != answered_before.end() && it->second > 0) {
      ++repeated;
      --it->second;
    }
  }
  EXPECT_LE(repeated, 8) << "of " << (all.size() - before_count) << " requests after restart";
  std::printf("kill -9: %zu requests before the kill, %zu after, %d repeated\n", before_count,
              all.size() - before_count, repeated);
  (*second)->Signal(SIGTERM);
}

}  // namespace
}  // namespace elexirion
