// Durable optimization jobs end to end over gRPC: submit -> stream -> result -> GetProgram ->
// ExecutePipeline, idempotent submits, cancel, reconnecting watchers, many watchers, bad
// requests. The model is the built-in simulated one (its answers depend on the demos).
#include <atomic>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/testutil/test_server.h"

namespace elexirion {
namespace {

using ::testing::HasSubstr;
using testutil::InProcessServer;
using testutil::TempDir;

class OptimizeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config::ServerConfig config = testutil::TestConfig(dir_);
    config.jobs.poll = absl::Milliseconds(50);
    config.jobs.heartbeat = absl::Milliseconds(100);
    auto server = InProcessServer::Start(config);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    client_ = server_->NewClient();
  }

  v1::OptimizeModuleRequest Request() {
    v1::OptimizeModuleRequest request;
    request.mutable_pipeline()->set_yaml(
        testutil::ReadFile(testutil::CodeAnalysisExample("pipeline.yaml")));
    request.set_program_name("code_analysis");
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

  grpc::Status Submit(const v1::OptimizeModuleRequest& request, v1::Job* job) {
    grpc::ClientContext context;
    client_->Prepare(&context);
    return client_->optimizer().OptimizeModule(&context, request, job);
  }

  // Reads the whole stream after `after_seq`.
  std::vector<v1::ProgressEvent> Stream(const std::string& job_id, int64_t after_seq,
                                        int max_events = 1 << 30) {
    grpc::ClientContext context;
    client_->Prepare(&context, absl::Seconds(60));
    v1::StreamProgressRequest request;
    request.set_job_id(job_id);
    request.set_after_seq(after_seq);
    auto reader = client_->optimizer().StreamProgress(&context, request);
    std::vector<v1::ProgressEvent> events;
    v1::ProgressEvent event;
    while (static_cast<int>(events.size()) < max_events && reader->Read(&event)) {
      events.push_back(event);
    }
    if (static_cast<int>(events.size()) >= max_events) context.TryCancel();
    reader->Finish();
    return events;
  }

  v1::Job GetJob(const std::string& id) { return testutil::GetJob(*client_, id); }

  TempDir dir_;
  std::unique_ptr<InProcessServer> server_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(OptimizeTest, SubmitStreamResultProgramAndExecute) {
  v1::Job job;
  grpc::Status status = Submit(Request(), &job);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(job.state(), v1::JOB_STATE_QUEUED);

  auto events = Stream(job.id(), 0);
  ASSERT_FALSE(events.empty());
  for (size_t i = 0; i < events.size(); ++i)
    EXPECT_EQ(events[i].seq(), static_cast<int64_t>(i + 1));
  EXPECT_EQ(events.front().state_changed().state(), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(events.back().state_changed().state(), v1::JOB_STATE_SUCCEEDED);
  bool saw_bootstrap = false, saw_summary = false;
  double baseline = -1, best = -1;
  for (const auto& e : events) {
    saw_bootstrap |= e.has_bootstrap();
    if (e.has_summary()) {
      saw_summary = true;
      baseline = e.summary().baseline_score();
      best = e.summary().best_score();
      EXPECT_EQ(e.summary().program_version(), 1);
      EXPECT_TRUE(e.summary().promoted());
    }
  }
  EXPECT_TRUE(saw_bootstrap);
  ASSERT_TRUE(saw_summary);
  EXPECT_GT(best, baseline);

  v1::Job ended = GetJob(job.id());
  EXPECT_EQ(ended.state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(ended.end_reason(), v1::END_REASON_COMPLETED);
  EXPECT_EQ(ended.result().version(), 1);
  EXPECT_EQ(ended.attempt(), 1);

  grpc::ClientContext context;
  client_->Prepare(&context);
  v1::GetProgramRequest get;
  get.mutable_program()->set_name("code_analysis");
  get.mutable_program()->set_label("production");
  v1::Program program;
  ASSERT_TRUE(client_->programs().GetProgram(&context, get, &program).ok());
  EXPECT_EQ(program.version(), 1);
  EXPECT_THAT(program.dspy_json(), HasSubstr("analyze_code"));
  EXPECT_THAT(program.optimized_yaml(), HasSubstr("workflow:"));
  EXPECT_DOUBLE_EQ(program.scores().validation(), best);

  grpc::ClientContext exec_ctx;
  client_->Prepare(&exec_ctx);
  v1::ExecutePipelineRequest execute;
  execute.mutable_pipeline()->set_yaml(
      testutil::ReadFile(testutil::CodeAnalysisExample("pipeline.yaml")));
  (*execute.mutable_inputs()->mutable_fields())["code"].set_string_value("eval(x)");
  (*execute.mutable_inputs()->mutable_fields())["analysis_type"].set_string_value("security");
  execute.mutable_program()->set_name("code_analysis");
  v1::ExecutePipelineResponse response;
  ASSERT_TRUE(client_->pipelines().ExecutePipeline(&exec_ctx, execute, &response).ok());
  EXPECT_TRUE(response.success()) << response.error();
  EXPECT_EQ(response.program().version(), 1);
  // The learned demos make the (simulated) model answer like the training data.
  EXPECT_EQ(response.final_json().struct_value().fields().at("severity").string_value(),
            "critical");

  // A watcher that reconnects with its last sequence number gets exactly the rest.
  auto tail = Stream(job.id(), 3);
  ASSERT_EQ(tail.size(), events.size() - 3);
  EXPECT_EQ(tail.front().seq(), 4);
  EXPECT_TRUE(Stream(job.id(), events.back().seq()).empty());
}

TEST_F(OptimizeTest, IdenticalConcurrentSubmitsMakeOneJob) {
  auto request = Request();
  request.set_request_id("submit-once-0001");
  std::vector<std::thread> threads;
  std::vector<std::string> ids(50);
  for (int i = 0; i < 50; ++i) {
    threads.emplace_back([&, i] {
      v1::Job job;
      if (Submit(request, &job).ok()) ids[static_cast<size_t>(i)] = job.id();
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& id : ids) EXPECT_EQ(id, ids[0]);
  grpc::ClientContext context;
  client_->Prepare(&context);
  v1::ListJobsResponse list;
  ASSERT_TRUE(client_->optimizer().ListJobs(&context, v1::ListJobsRequest(), &list).ok());
  EXPECT_EQ(list.jobs_size(), 1);
}

// Watchers that join while the job runs replay it from the server's memory; every one gets
// exactly the events the store has, in order, from the first one (or after its own seq).
TEST_F(OptimizeTest, ManyWatchersAllSeeTheWholeStream) {
  v1::Job job;
  ASSERT_TRUE(Submit(Request(), &job).ok());
  constexpr int kWatchers = 200;
  std::vector<std::thread> threads;
  std::vector<std::vector<v1::ProgressEvent>> seen(kWatchers);
  for (int i = 0; i < kWatchers; ++i) {
    // Every fourth one resumes after the job's second event.
    threads.emplace_back(
        [&, i] { seen[static_cast<size_t>(i)] = Stream(job.id(), i % 4 == 3 ? 2 : 0); });
  }
  for (auto& t : threads) t.join();
  // Read after the end: from the store.
  const std::vector<v1::ProgressEvent> stored = Stream(job.id(), 0);
  ASSERT_FALSE(stored.empty());
  EXPECT_EQ(stored.back().state_changed().state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(static_cast<int64_t>(stored.size()), GetJob(job.id()).last_event_seq());
  for (int i = 0; i < kWatchers; ++i) {
    const auto& events = seen[static_cast<size_t>(i)];
    const size_t skip = i % 4 == 3 ? 2 : 0;
    ASSERT_EQ(events.size(), stored.size() - skip) << "watcher " << i;
    for (size_t k = 0; k < events.size(); ++k) {
      EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(events[k], stored[k + skip]))
          << "watcher " << i << " event " << k << ": " << events[k].ShortDebugString()
          << " != " << stored[k + skip].ShortDebugString();
    }
  }
}

TEST_F(OptimizeTest, BadRequestsNameTheField) {
  struct Case {
    std::function<void(v1::OptimizeModuleRequest&)> mutate;
    std::string expected;
  };
  std::vector<Case> cases = {
      {[](auto& r) { r.clear_pipeline(); }, "pipeline"},
      {[](auto& r) { r.mutable_pipeline()->set_yaml("workflow: {name: x, steps: []}"); },
       "pipeline.yaml"},
      {[](auto& r) { r.mutable_pipeline()->set_name("nope"); }, "pipeline.name"},
      {[](auto& r) { r.set_program_name(""); }, "program_name"},
      {[](auto& r) { r.set_program_name("Bad Name"); }, "program_name"},
      {[](auto& r) { r.clear_trainset(); }, "trainset"},
      {[](auto& r) { r.mutable_trainset()->mutable_inline_()->clear_examples(); }, "trainset"},
      {[](auto& r) { r.mutable_trainset()->set_dataset("missing"); }, "trainset.dataset"},
      {[](auto& r) { r.mutable_trainset()->set_jsonl("{not json\n"); }, "trainset"},
      {[](auto& r) { r.clear_metric(); }, "metric"},
      {[](auto& r) { r.mutable_metric()->mutable_exact_match()->set_field("colour"); }, "metric"},
      {[](auto& r) { r.clear_optimizer(); }, "optimizer"},
      {[](auto& r) { r.mutable_optimizer()->mutable_copro()->set_breadth(1); }, "breadth"},
      {[](auto& r) {
         r.mutable_optimizer()->mutable_bootstrap_few_shot()->set_max_bootstrapped_demos(-1);
       },
       "max_bootstrapped_demos"},
      {[](auto& r) { r.mutable_optimizer()->mutable_gepa(); }, "optimizer.gepa.auto"},
      {[](auto& r) {
         auto* gepa = r.mutable_optimizer()->mutable_gepa();
         gepa->set_auto_(v1::OptimizerSpec::Gepa::AUTO_LIGHT);
         gepa->set_reflection_minibatch_size(-3);
       },
       "optimizer.gepa.reflection_minibatch_size"},
      {[](auto& r) { r.mutable_optimizer()->mutable_simba()->set_bsize(5000); },
       "optimizer.simba.bsize"},
      {[](auto& r) { r.mutable_budget()->set_max_usd(-1); }, "budget.max_usd"},
      {[](auto& r) { r.mutable_lm()->set_temperature(9); }, "lm.temperature"},
      {[](auto& r) { r.set_request_id(std::string(200, 'x')); }, "request_id"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    auto request = Request();
    cases[i].mutate(request);
    v1::Job job;
    grpc::Status status = Submit(request, &job);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << "case " << i << ": " << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr(cases[i].expected)) << "case " << i;
  }
  // Nothing was queued, and the server still takes a good request.
  grpc::ClientContext context;
  client_->Prepare(&context);
  v1::ListJobsResponse list;
  ASSERT_TRUE(client_->optimizer().ListJobs(&context, v1::ListJobsRequest(), &list).ok());
  EXPECT_EQ(list.jobs_size(), 0);
  v1::Job job;
  EXPECT_TRUE(Submit(Request(), &job).ok());
}

TEST_F(OptimizeTest, StreamOfUnknownJobIsNotFound) {
  grpc::ClientContext context;
  client_->Prepare(&context);
  v1::StreamProgressRequest request;
  request.set_job_id("nope");
  auto reader = client_->optimizer().StreamProgress(&context, request);
  v1::ProgressEvent event;
  EXPECT_FALSE(reader->Read(&event));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace elexirion
