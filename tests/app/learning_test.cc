// Continuous learning end to end in the real server: executions recorded over gRPC become
// training data, the scheduler (on a fake clock) submits an ordinary job when should_optimize
// holds, the job runs on the workers against the fake provider over HTTP, and its program is
// promoted only when it beats production on held-out data.
#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "server/common/clock.h"
#include "server/learning/scheduler.h"
#include "tests/fakes/fake_provider_server.h"
#include "tests/testutil/test_server.h"

namespace elexirion {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using testutil::InProcessServer;
using testutil::TempDir;

// The model always answers "medium": a program is as good as any other on these examples.
fakes::FakeResponse Answer(const fakes::RecordedRequest&) {
  return fakes::FakeResponse::Text(
      "[[ ## severity ## ]]\nmedium\n\n[[ ## findings ## ]]\nunsafe input handling\n\n"
      "[[ ## recommendations ## ]]\nvalidate input\n\n[[ ## completed ## ]]\n");
}

// The next 02:00 UTC after the real now: records sent now fall in its 24 h usage window.
absl::Time NextTwoAm() {
  const absl::TimeZone utc = absl::UTCTimeZone();
  const absl::CivilDay today = absl::ToCivilDay(absl::Now(), utc);
  absl::Time t = absl::FromCivil(absl::CivilHour(today) + 2, utc);
  if (t <= absl::Now()) t += absl::Hours(24);
  return t;
}

class LearningTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto fake = fakes::FakeProviderServer::Start();
    ASSERT_TRUE(fake.ok()) << fake.status();
    fake_ = std::move(*fake);
    fake_->SetHandler(Answer);
    config::ServerConfig config = testutil::TestConfig(dir_);
    config.jobs.poll = absl::Milliseconds(50);
    std::string key = dir_.Write("anthropic.key", "sk-ant-CANARY-learning-0001");
    config.llm = YAML::Load(testutil::FakeAnthropicProviders(fake_->base_url(), key));
    config.learning = YAML::Load(R"(
time_zone: UTC
pipelines:
  code_analysis:
    metric: {exact_match: {field: severity}}
    daily: {at: "02:00"}
    weekly: {enabled: false}
)");
    app::Server::Options options;
    options.config = config;
    options.start_scheduler = false;  // driven by RunDue below
    options.scheduler_clock = &clock_;
    auto server = InProcessServer::Start(std::move(options));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    client_ = server_->NewClient();

    grpc::ClientContext ctx;
    client_->Prepare(&ctx);
    v1::RegisterPipelineRequest request;
    request.mutable_pipeline()->set_name("code_analysis");
    request.mutable_pipeline()->set_yaml(
        testutil::ReadFile(testutil::CodeAnalysisExample("pipeline.yaml")));
    v1::Pipeline registered;
    grpc::Status status = client_->pipelines().RegisterPipeline(&ctx, request, &registered);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  // `count` successful executions rated 9 (harvested), inputs numbered from `first`.
  void RecordGoodExecutions(int first, int count) {
    grpc::ClientContext ctx;
    client_->Prepare(&ctx);
    v1::RecordExecutionsRequest request;
    for (int i = first; i < first + count; ++i) {
      v1::ExecutionRecord* r = request.add_records();
      // Parsing JSON replaces the whole message: the fields go in afterwards.
      std::string json = absl::StrCat(
          R"({"input": {"code": "os.system(cmd) if ok", )", R"("analysis_type": "security-)", i,
          R"("}, "output": {"severity": "medium",)", R"( "findings": "unsafe input handling"}})");
      ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, r).ok());
      r->set_pipeline_name("code_analysis");
      r->set_success(true);
      r->set_quality_score(9);
      r->mutable_duration()->set_seconds(2);
    }
    v1::RecordExecutionsResponse response;
    ASSERT_TRUE(client_->telemetry().RecordExecutions(&ctx, request, &response).ok());
    ASSERT_EQ(response.harvested(), count);
  }

  std::vector<v1::Job> Jobs() {
    grpc::ClientContext ctx;
    client_->Prepare(&ctx);
    v1::ListJobsRequest request;
    request.set_program_name("code_analysis");
    v1::ListJobsResponse response;
    EXPECT_TRUE(client_->optimizer().ListJobs(&ctx, request, &response).ok());
    return {response.jobs().begin(), response.jobs().end()};
  }

  v1::Job WaitForEnd(const std::string& id) {
    for (int i = 0; i < 1200; ++i) {
      v1::Job job = testutil::GetJob(*client_, id);
      if (job.state() == v1::JOB_STATE_SUCCEEDED || job.state() == v1::JOB_STATE_FAILED ||
          job.state() == v1::JOB_STATE_CANCELLED) {
        return job;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "job " << id << " did not end";
    return {};
  }

  grpc::Status GetProgram(const std::string& label, v1::Program* program) {
    grpc::ClientContext ctx;
    client_->Prepare(&ctx);
    v1::GetProgramRequest request;
    request.mutable_program()->set_name("code_analysis");
    request.mutable_program()->set_label(label);
    return client_->programs().GetProgram(&ctx, request, program);
  }

  std::string SlotOutcome(const std::string& day) {
    auto slot = server_->server().store()->GetScheduleSlot("learning/code_analysis/daily", day);
    EXPECT_TRUE(slot.ok());
    return slot.ok() && slot->has_value() ? (*slot)->outcome : "";
  }

  TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<fakes::FakeProviderServer> fake_;
  std::unique_ptr<InProcessServer> server_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(LearningTest, DailyRunIsAnOrdinaryJobPromotedOnlyWhenBetter) {
  const absl::Time day1 = NextTwoAm();
  const std::string day1_key = absl::FormatCivilTime(absl::ToCivilDay(day1, absl::UTCTimeZone()));

  // 01:59: not due yet. 02:00 with only 10 new examples and no executions failing: healthy.
  RecordGoodExecutions(0, 10);
  server_->server().scheduler()->RunDue(day1 - absl::Minutes(1));
  EXPECT_TRUE(Jobs().empty());
  EXPECT_EQ(SlotOutcome(day1_key), "");

  // Day 1, 02:00:30 with 12 new examples (> 10): an ordinary optimization job.
  RecordGoodExecutions(10, 2);
  server_->server().scheduler()->RunDue(day1 + absl::Seconds(30));
  std::vector<v1::Job> jobs = Jobs();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].request().request_id(),
            absl::StrCat("learning:code_analysis:daily:", day1_key));
  EXPECT_THAT(SlotOutcome(day1_key), HasSubstr(jobs[0].id()));
  // Later ticks of the same slot do nothing more.
  server_->server().scheduler()->RunDue(day1 + absl::Hours(3));
  EXPECT_EQ(Jobs().size(), 1u);

  v1::Job first = WaitForEnd(jobs[0].id());
  ASSERT_EQ(first.state(), v1::JOB_STATE_SUCCEEDED) << first.DebugString();
  v1::Program production;
  ASSERT_TRUE(GetProgram("production", &production).ok());
  EXPECT_EQ(production.version(), 1) << "the first version becomes production";
  EXPECT_EQ(production.pipeline_name(), "code_analysis") << "the registered name, not the YAML's";

  // Day 2: healthy, no new examples: skipped, recorded as such.
  const absl::Time day2 = day1 + absl::Hours(24);
  const std::string day2_key = absl::FormatCivilTime(absl::ToCivilDay(day2, absl::UTCTimeZone()));
  server_->server().scheduler()->RunDue(day2 + absl::Minutes(5));
  EXPECT_EQ(Jobs().size(), 1u);
  EXPECT_THAT(SlotOutcome(day2_key), StartsWith("skipped"));

  // Day 3: 11 new examples: a second run. It is no better than production on its held-out
  // data (the model answers the same whatever the prompt), so production stays version 1.
  RecordGoodExecutions(100, 11);
  const absl::Time day3 = day1 + absl::Hours(48);
  server_->server().scheduler()->RunDue(day3 + absl::Minutes(1));
  jobs = Jobs();
  ASSERT_EQ(jobs.size(), 2u);
  v1::Job second = WaitForEnd(jobs[0].id());  // newest first
  ASSERT_EQ(second.state(), v1::JOB_STATE_SUCCEEDED) << second.DebugString();
  v1::Program latest;
  ASSERT_TRUE(GetProgram("latest", &latest).ok());
  EXPECT_EQ(latest.version(), 2);
  ASSERT_TRUE(GetProgram("production", &production).ok());
  EXPECT_EQ(production.version(), 1) << "not better: not promoted";
}

}  // namespace
}  // namespace elexirion
