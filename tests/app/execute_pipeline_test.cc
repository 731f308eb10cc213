// ExecutePipeline and pipeline registration end to end: the real server in-process, real
// HTTP to the fake provider server on loopback, real SQLite.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "server/store/store.h"
#include "tests/fakes/fake_provider_server.h"
#include "tests/testutil/test_server.h"

namespace elexirion {
namespace {

using ::testing::HasSubstr;
using testutil::InProcessServer;
using testutil::TempDir;

constexpr char kAnthropicKey[] = "sk-ant-CANARY-execute-0001";
constexpr char kGeminiKey[] = "AIzaCANARY-execute-0002";

std::string ReadTestdata(const std::string& name) {
  std::ifstream in(testutil::SourcePath("tests/pipeline/testdata/" + name));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class ExecutePipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto fake = fakes::FakeProviderServer::Start();
    ASSERT_TRUE(fake.ok()) << fake.status();
    fake_ = std::move(*fake);
    // Answers name the step's first prompt line so tests can follow the data flow.
    fake_->SetHandler([](const fakes::RecordedRequest& request) {
      std::string prompt = request.LastUserText();
      std::string first = prompt.substr(0, prompt.find('\n'));
      return fakes::FakeResponse::Text("answer to: " + first);
    });
    config::ServerConfig config = testutil::TestConfig(dir_);
    config.pipeline.prompts_dir = testutil::SourcePath("tests/pipeline/testdata/prompts");
    std::string anthropic_key = dir_.Write("anthropic.key", kAnthropicKey);
    std::string gemini_key = dir_.Write("gemini.key", kGeminiKey);
    config.llm = YAML::Load(absl::StrCat(
        "providers:\n"
        "  anthropic:\n    kind: anthropic\n    base_url: ", fake_->base_url(),
        "\n    api_key_file: ", anthropic_key,
        "\n    retry_base_delay: 10ms\n"
        "    prices: {claude-sonnet-4-5: {input: 3.0, output: 15.0}}\n"
        "  gemini:\n    kind: gemini\n    base_url: ", fake_->base_url(),
        "\n    api_key_file: ", gemini_key, "\n"));
    auto server = InProcessServer::Start(config);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    client_ = server_->NewClient();
  }

  grpc::Status Execute(const v1::ExecutePipelineRequest& request,
                       v1::ExecutePipelineResponse* response) {
    grpc::ClientContext context;
    client_->Prepare(&context);
    return client_->pipelines().ExecutePipeline(&context, request, response);
  }

  v1::ExecutePipelineRequest Inline(const std::string& yaml, const std::string& inputs_json = "{}") {
    v1::ExecutePipelineRequest request;
    request.mutable_pipeline()->set_yaml(yaml);
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(inputs_json, request.mutable_inputs())
                    .ok());
    return request;
  }

  // The server still executes a good pipeline.
  void ExpectHealthy() {
    v1::ExecutePipelineResponse response;
    grpc::Status status = Execute(Inline(kSimple), &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_TRUE(response.success());
  }

  void ExpectInvalid(const std::string& yaml, const std::string& expected) {
    v1::ExecutePipelineResponse response;
    grpc::Status status = Execute(Inline(yaml), &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr(expected));
    ExpectHealthy();
  }

  static constexpr char kSimple[] =
      "workflow:\n  name: simple\n  steps:\n    - name: hello\n      type: claude\n"
      "      prompt:\n        - type: static\n          content: Say hello\n";

  TempDir dir_;
  std::unique_ptr<fakes::FakeProviderServer> fake_;
  std::unique_ptr<InProcessServer> server_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(ExecutePipelineTest, CodeAnalysisTemplateOverRealHttp) {
  auto request = Inline(ReadTestdata("code_analysis.yaml"),
                        R"({"code": "def f(x): return x/0", "analysis_type": "bugs"})");
  request.set_include_prompts(true);
  v1::ExecutePipelineResponse response;
  grpc::Status status = Execute(request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_TRUE(response.success()) << response.error();
  ASSERT_EQ(response.steps_size(), 1);
  const auto& step = response.steps(0);
  EXPECT_EQ(step.name(), "analyze_code");
  EXPECT_EQ(step.status(), v1::StepResult::STATUS_SUCCEEDED);
  EXPECT_EQ(step.provider(), "anthropic");
  EXPECT_FALSE(step.simulated());
  EXPECT_THAT(step.rendered_prompt(), HasSubstr("def f(x): return x/0"));
  EXPECT_THAT(step.rendered_prompt(), HasSubstr("Analysis type: bugs"));
  EXPECT_EQ(response.final_output(), step.text());
  EXPECT_THAT(response.final_output(), HasSubstr("answer to: Analyze the following code"));
  EXPECT_EQ(response.usage().llm_calls(), 1);
  EXPECT_EQ(response.usage().input_tokens(), 10);

  ASSERT_EQ(fake_->request_count(), 1);
  auto recorded = fake_->requests()[0];
  EXPECT_EQ(recorded.path, "/v1/messages");
  EXPECT_EQ(recorded.Header("x-api-key"), kAnthropicKey);
  EXPECT_THAT(recorded.LastUserText(), HasSubstr("def f(x): return x/0"));
}

TEST_F(ExecutePipelineTest, FilesPreviousResponsesAndIgnoredOptions) {
  v1::ExecutePipelineResponse response;
  grpc::Status status = Execute(Inline(ReadTestdata("fix_bug.yaml")), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_TRUE(response.success()) << response.error();
  ASSERT_EQ(response.steps_size(), 3);
  EXPECT_EQ(response.steps(0).provider(), "gemini");
  EXPECT_THAT(response.steps(1).ignored_options(), ::testing::Contains(HasSubstr("allowed_tools")));
  // The second step's prompt carries the first step's answer.
  auto requests = fake_->requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_THAT(requests[0].path, HasSubstr(":generateContent"));
  EXPECT_EQ(requests[0].Header("x-goog-api-key"), kGeminiKey);
  EXPECT_EQ(requests[0].query.find("key="), std::string::npos);
  EXPECT_THAT(requests[1].LastUserText(), HasSubstr(response.steps(0).text()));
}

TEST_F(ExecutePipelineTest, RegisteredPipelineByNameAndCacheHits) {
  grpc::ClientContext context;
  client_->Prepare(&context);
  v1::RegisterPipelineRequest reg;
  reg.mutable_pipeline()->set_name("code_analysis");
  reg.mutable_pipeline()->set_yaml(ReadTestdata("code_analysis.yaml"));
  v1::Pipeline registered;
  ASSERT_TRUE(client_->pipelines().RegisterPipeline(&context, reg, &registered).ok());
  EXPECT_EQ(registered.revision(), 1);
  ASSERT_EQ(registered.steps_size(), 1);
  EXPECT_EQ(registered.steps(0).signature(),
            "code, analysis_type -> findings, recommendations, severity");

  v1::ExecutePipelineRequest request;
  request.mutable_pipeline()->set_name("code_analysis");
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(
                  R"({"code": "x = 1", "analysis_type": "style"})", request.mutable_inputs())
                  .ok());
  v1::ExecutePipelineResponse first, second;
  ASSERT_TRUE(Execute(request, &first).ok());
  ASSERT_TRUE(first.success()) << first.error();
  ASSERT_TRUE(Execute(request, &second).ok());
  EXPECT_EQ(second.usage().llm_calls(), 0);
  EXPECT_EQ(second.usage().cache_hits(), 1);
  EXPECT_EQ(second.final_output(), first.final_output());
  EXPECT_EQ(fake_->request_count(), 1);

  request.set_no_cache(true);
  v1::ExecutePipelineResponse third;
  ASSERT_TRUE(Execute(request, &third).ok());
  EXPECT_EQ(fake_->request_count(), 2);

  v1::ExecutePipelineRequest missing;
  missing.mutable_pipeline()->set_name("nope");
  v1::ExecutePipelineResponse r;
  EXPECT_EQ(Execute(missing, &r).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ExecutePipelineTest, ProgramIsAppliedByNameAndVersion) {
  store::ProgramRecord program;
  program.name = "code_analysis";
  program.pipeline_name = "code_analysis";
  program.dspy_json = R"json({
    "analyze_code": {
      "traces": [], "train": [],
      "demos": [{"augmented": true, "code": "print(1/0)", "analysis_type": "bugs",
                 "findings": "division by zero", "recommendations": "guard", "severity": "high"}],
      "signature": {"instructions": "Think step by step about defects.", "fields": [
          {"prefix": "Code:", "description": "${code}"},
          {"prefix": "Analysis Type:", "description": "${analysis_type}"},
          {"prefix": "Findings:", "description": "${findings}"},
          {"prefix": "Recommendations:", "description": "${recommendations}"},
          {"prefix": "Severity:", "description": "${severity}"}]},
      "lm": null
    },
    "metadata": {"dependency_versions": {"dspy": "elexirion"}}
  })json";
  auto stored = server_->server().store()->CreateProgramVersion(program);
  ASSERT_TRUE(stored.ok()) << stored.status();

  auto request = Inline(ReadTestdata("code_analysis.yaml"),
                        R"({"code": "y = []", "analysis_type": "bugs"})");
  request.mutable_program()->set_name("code_analysis");
  request.set_include_prompts(true);
  fake_->Enqueue(fakes::FakeResponse::Text(
      "[[ ## findings ## ]]\nunbounded list\n\n[[ ## recommendations ## ]]\nbound it\n\n"
      "[[ ## severity ## ]]\nhigh\n\n[[ ## completed ## ]]\n"));
  v1::ExecutePipelineResponse response;
  grpc::Status status = Execute(request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_TRUE(response.success()) << response.error();
  EXPECT_EQ(response.program().version(), stored->version);
  // The optimized step is called as the optimizer evaluated it: the learned instruction in
  // the adapter's system message, the demo as a user/assistant turn, the inputs as fields.
  ASSERT_EQ(fake_->request_count(), 1);
  const std::string body = fake_->requests()[0].body;
  EXPECT_THAT(body, HasSubstr("Think step by step about defects."));
  EXPECT_THAT(body, HasSubstr("division by zero"));
  EXPECT_THAT(body, HasSubstr("[[ ## code ## ]]"));
  EXPECT_THAT(body, HasSubstr("y = []"));
  // The parsed fields come back as the final JSON.
  EXPECT_EQ(response.final_json().struct_value().fields().at("severity").string_value(), "high");

  request.mutable_program()->set_version(99);
  EXPECT_EQ(Execute(request, &response).error_code(), grpc::StatusCode::NOT_FOUND);
  request.mutable_program()->set_label("stable");
  status = Execute(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("program.label"));
}

TEST_F(ExecutePipelineTest, ForLoopAndNestedPipelineOverRealHttp) {
  auto request = Inline(ReadTestdata("review_loop.yaml"), R"j({"code": "total = sum(cart)"})j");
  request.set_include_prompts(true);
  v1::ExecutePipelineResponse response;
  grpc::Status status = Execute(request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_TRUE(response.success()) << response.error();
  std::vector<std::string> names;
  for (const auto& step : response.steps()) names.push_back(step.name());
  EXPECT_THAT(names, ::testing::ElementsAre("files", "each_file/summarize", "each_file/summarize",
                                            "each_file", "review/analyze", "review", "report"));
  EXPECT_EQ(response.steps(1).rendered_prompt(),
            "Summarize the risks in cart.py (item 0 of 2).\ncart.py");
  EXPECT_EQ(response.steps(2).rendered_prompt(),
            "Summarize the risks in auth.py (item 1 of 2).\nauth.py");
  EXPECT_EQ(response.steps(4).rendered_prompt(), "Review this code for bugs.\ntotal = sum(cart)");
  EXPECT_EQ(response.steps(6).rendered_prompt(),
            "Write the report.\n2\nanswer to: Review this code for bugs.");
  EXPECT_EQ(response.steps(6).provider(), "gemini");
  EXPECT_EQ(response.final_output(), "answer to: Write the report.");
  EXPECT_EQ(fake_->request_count(), 4);
}

TEST_F(ExecutePipelineTest, ProgramReachesStepsInsideLoopsAndNestedPipelines) {
  store::ProgramRecord program;
  program.name = "review_loop";
  program.pipeline_name = "review_loop";
  // Save keys are Python identifiers: the step path "each_file/summarize" is saved as
  // "each_file_summarize", as the optimizer writes it.
  program.dspy_json = R"json({
    "each_file_summarize": {
      "traces": [], "train": [], "demos": [],
      "signature": {"instructions": "Name the single worst risk.", "fields": [
          {"prefix": "Input Data:", "description": "${input_data}"},
          {"prefix": "Pipeline Output:", "description": "${pipeline_output}"}]},
      "lm": null
    },
    "review_analyze": {
      "traces": [], "train": [], "demos": [],
      "signature": {"instructions": "Hunt for off-by-one errors.", "fields": [
          {"prefix": "Input Data:", "description": "${input_data}"},
          {"prefix": "Pipeline Output:", "description": "${pipeline_output}"}]},
      "lm": null
    },
    "metadata": {"dependency_versions": {"dspy": "elexirion"}}
  })json";
  auto stored = server_->server().store()->CreateProgramVersion(program);
  ASSERT_TRUE(stored.ok()) << stored.status();
  fake_->SetHandler([](const fakes::RecordedRequest&) {
    return fakes::FakeResponse::Text("[[ ## pipeline_output ## ]]\nok\n\n[[ ## completed ## ]]\n");
  });
  auto request = Inline(ReadTestdata("review_loop.yaml"), R"j({"code": "for i in range(n+1)"})j");
  request.mutable_program()->set_name("review_loop");
  v1::ExecutePipelineResponse response;
  grpc::Status status = Execute(request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_TRUE(response.success()) << response.error();
  ASSERT_EQ(fake_->request_count(), 4);
  int loop_calls = 0, nested_calls = 0;
  for (const auto& recorded : fake_->requests()) {
    if (absl::StrContains(recorded.body, "Name the single worst risk.")) {
      ++loop_calls;
      EXPECT_THAT(recorded.body, ::testing::AnyOf(HasSubstr("cart.py"), HasSubstr("auth.py")));
    }
    if (absl::StrContains(recorded.body, "Hunt for off-by-one errors.")) {
      ++nested_calls;
      EXPECT_THAT(recorded.body, HasSubstr("for i in range(n+1)"));
    }
  }
  EXPECT_EQ(loop_calls, 2);  // every iteration
  EXPECT_EQ(nested_calls, 1);
}

TEST_F(ExecutePipelineTest, BadLoopsAndNestedPipelinesAreInvalid) {
  ExpectInvalid(
      "workflow:\n  name: x\n  steps:\n    - name: s\n      type: for_loop\n"
      "      data_source: items\n      steps: [{name: a, type: set_variable, "
      "variables: {}}]\n",
      "line 4, column 7: step \"s\": for_loop needs a `iterator` string");
  ExpectInvalid(
      "workflow:\n  name: x\n  steps:\n"
      "    - {name: s, type: pipeline, pipeline_file: pipelines/cycle_a.yaml}\n",
      "circular pipeline_file reference");
  ExpectInvalid(
      "workflow:\n  name: x\n  steps:\n"
      "    - {name: s, type: pipeline, pipeline_file: ../../secret.yaml}\n",
      "must not contain \"..\"");
  ExpectInvalid(
      "workflow:\n  name: x\n  steps:\n    - name: s\n      type: while_loop\n"
      "      condition: \"true\"\n      max_iterations: 100000\n"
      "      steps: [{name: a, type: set_variable, variables: {}}]\n",
      "max_iterations must be an integer from 1 to 1000");
}

TEST_F(ExecutePipelineTest, BudgetEndsTheRunCleanly) {
  const std::string two_steps =
      "workflow:\n  name: two\n  steps:\n"
      "    - name: a\n      type: claude\n      prompt: [{type: static, content: first}]\n"
      "    - name: b\n      type: claude\n      prompt: [{type: static, content: second}]\n";
  auto request = Inline(two_steps);
  request.mutable_budget()->set_max_llm_calls(1);
  request.set_no_cache(true);
  v1::ExecutePipelineResponse response;
  ASSERT_TRUE(Execute(request, &response).ok());
  EXPECT_FALSE(response.success());
  EXPECT_THAT(response.error(), HasSubstr("budget"));
  EXPECT_EQ(fake_->request_count(), 1);
  EXPECT_EQ(response.usage().llm_calls(), 1);
}

TEST_F(ExecutePipelineTest, CallerDeadlineAbortsTheModelCall) {
  fake_->SetLatency(absl::Seconds(20));
  grpc::ClientContext context;
  client_->Prepare(&context, absl::Milliseconds(500));
  v1::ExecutePipelineResponse response;
  const absl::Time start = absl::Now();
  grpc::Status status = client_->pipelines().ExecutePipeline(&context, Inline(kSimple), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  fake_->SetLatency(absl::ZeroDuration());
  ExpectHealthy();
}

TEST_F(ExecutePipelineTest, SecretsNeverReachTheCaller) {
  fake_->SetHandler([](const fakes::RecordedRequest& request) {
    return fakes::FakeResponse::EchoKeyError(request, 401);
  });
  v1::ExecutePipelineResponse response;
  ASSERT_TRUE(Execute(Inline(kSimple), &response).ok());
  EXPECT_FALSE(response.success());
  std::string all;
  google::protobuf::util::MessageToJsonString(response, &all);
  EXPECT_EQ(all.find("CANARY"), std::string::npos) << all;
}

TEST_F(ExecutePipelineTest, BadPipelinesAreInvalidAndTheServerStaysHealthy) {
  ExpectInvalid("workflow:\n  name: x\n  steps:\n    - name: s\n      type: teleport\n"
                "      prompt: [{type: static, content: hi}]\n",
                "teleport");
  ExpectInvalid("workflow:\n  name: x\n  steps:\n    - name: s\n      type: claude\n", "prompt");
  ExpectInvalid("workflow:\n  name: x\n  steps:\n    - name: s\n      type: claude\n"
                "      prompt: [{type: previous_response, step: ghost}]\n",
                "ghost");
  ExpectInvalid("workflow:\n  name: x\n  steps:\n"
                "    - name: a\n      type: claude\n"
                "      prompt: [{type: previous_response, step: b}]\n"
                "    - name: b\n      type: claude\n      prompt: [{type: static, content: x}]\n",
                "\"b\"");
  ExpectInvalid("workflow:\n  name: x\n  steps:\n    - name: s\n      type: claude\n"
                "      prompt: [{type: file, path: ../../../etc/passwd}]\n",
                "path");
  ExpectInvalid("workflow:\n  name: x\n  steps:\n    - name: s\n      type: claude\n"
                "      prompt: [{type: file, path: /etc/passwd}]\n",
                "path");
  // Alias cycle and alias bomb.
  ExpectInvalid("a: &x [1, *x]\nworkflow: *x\n", "line");
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n";
  for (char c = 'b'; c <= 'j'; ++c) {
    bomb += absl::StrCat(std::string(1, c), ": &", std::string(1, c), " [");
    for (int i = 0; i < 9; ++i) bomb += absl::StrCat(i ? ", " : "", "*", std::string(1, c - 1));
    bomb += "]\n";
  }
  bomb += "workflow: {name: bomb, steps: *j}\n";
  ExpectInvalid(bomb, "");
  ExpectInvalid(std::string(10000, '[') + std::string(10000, ']'), "");
  std::string block;
  for (int i = 0; i < 10000; ++i) block += std::string(static_cast<size_t>(i % 200), ' ') + "-\n";
  ExpectInvalid(block, "");
  // Larger than pipeline.max_yaml_bytes (1 MiB) but within the gRPC message limit.
  ExpectInvalid("# " + std::string(2 << 20, 'x') + "\n" + kSimple, "");
}

TEST_F(ExecutePipelineTest, SymlinkEscapeIsRefused) {
  // A prompts directory with a symlink pointing outside of it.
  TempDir prompts;
  std::filesystem::create_directories(prompts.File("inside"));
  std::filesystem::create_symlink("/etc", prompts.File("inside/escape"));
  dir_.Write("other.key", "");
  config::ServerConfig config = testutil::TestConfig(dir_);
  config.store.sqlite_path = dir_.File("symlink.sqlite");
  config.pipeline.prompts_dir = prompts.path();
  auto server = InProcessServer::Start(config);
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = (*server)->NewClient();
  grpc::ClientContext context;
  client->Prepare(&context);
  v1::ExecutePipelineResponse response;
  auto request = Inline(
      "workflow:\n  name: x\n  steps:\n    - name: s\n      type: claude\n"
      "      prompt: [{type: file, path: inside/escape/passwd}]\n");
  grpc::Status status = client->pipelines().ExecutePipeline(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
}

TEST_F(ExecutePipelineTest, FiftyMegabyteRequestIsRejectedAndServerStaysHealthy) {
  auto request = Inline(std::string(50 << 20, '#'));
  v1::ExecutePipelineResponse response;
  grpc::Status status = Execute(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  ExpectHealthy();
}

TEST_F(ExecutePipelineTest, BadRequestFieldsAreNamed) {
  v1::ExecutePipelineResponse response;
  grpc::Status status = Execute(v1::ExecutePipelineRequest(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("pipeline"));

  auto request = Inline(kSimple);
  request.mutable_lm()->set_temperature(5);
  status = Execute(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("lm.temperature"));

  request = Inline(kSimple);
  request.mutable_budget()->set_max_usd(-1);
  status = Execute(request, &response);
  EXPECT_THAT(status.error_message(), HasSubstr("budget.max_usd"));

  request = Inline(kSimple);
  request.mutable_program()->set_name("Bad Name!");
  status = Execute(request, &response);
  EXPECT_THAT(status.error_message(), HasSubstr("program.name"));

  grpc::ClientContext context;
  client_->Prepare(&context);
  v1::RegisterPipelineRequest reg;
  reg.mutable_pipeline()->set_name("ok");
  reg.mutable_pipeline()->set_yaml("workflow: {name: x, steps: []}\n");
  v1::Pipeline p;
  status = client_->pipelines().RegisterPipeline(&context, reg, &p);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("pipeline.yaml"));
}

TEST_F(ExecutePipelineTest, ManyConcurrentExecutions) {
  fake_->SetLatency(absl::Milliseconds(20));
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      auto request = Inline(kSimple);
      request.set_no_cache(true);
      request.mutable_inputs()->mutable_fields()->operator[]("n").set_number_value(t);
      v1::ExecutePipelineResponse response;
      if (Execute(request, &response).ok() && response.success()) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 16);
  EXPECT_GT(fake_->max_concurrent_requests(), 1);
}

// Calls beyond grpc.max_inflight_rpcs are refused at once, not queued behind slow ones.
TEST_F(ExecutePipelineTest, ExcessCallsFailFastWithResourceExhausted) {
  server_.reset();
  config::ServerConfig config = testutil::TestConfig(dir_);
  config.store.sqlite_path = dir_.File("admission.sqlite");
  config.grpc.max_inflight_rpcs = 2;
  config.llm = YAML::Load(absl::StrCat("providers:\n  anthropic:\n    kind: anthropic\n"
                                       "    base_url: ", fake_->base_url(),
                                       "\n    api_key_file: ", dir_.File("anthropic.key"), "\n"));
  auto server = InProcessServer::Start(config);
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = (*server)->NewClient();
  fake_->SetLatency(absl::Seconds(2));
  std::atomic<int> ok{0}, exhausted{0};
  std::atomic<int64_t> slowest_rejection_ms{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      if (i >= 2) absl::SleepFor(absl::Milliseconds(300));  // the first two are in flight
      auto request = Inline(kSimple);
      request.set_no_cache(true);
      (*request.mutable_inputs()->mutable_fields())["i"].set_number_value(i);
      grpc::ClientContext context;
      client->Prepare(&context);
      v1::ExecutePipelineResponse response;
      const absl::Time start = absl::Now();
      grpc::Status status = client->pipelines().ExecutePipeline(&context, request, &response);
      if (status.ok()) {
        ++ok;
      } else if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
        ++exhausted;
        int64_t ms = absl::ToInt64Milliseconds(absl::Now() - start);
        int64_t prev = slowest_rejection_ms.load();
        while (ms > prev && !slowest_rejection_ms.compare_exchange_weak(prev, ms)) {
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 2);
  EXPECT_EQ(exhausted.load(), 6);
  // Refused without waiting for the 2 s calls in flight.
  EXPECT_LT(slowest_rejection_ms.load(), 1500);
  fake_->SetLatency(absl::ZeroDuration());
}

// A client that pings often (as the Elixir runtime's may) keeps its long calls when the
// server's min_client_ping_interval allows it, and is cut off with too_many_pings when not.
TEST_F(ExecutePipelineTest, KeepalivePolicyToleratesConfiguredClientPings) {
  auto run_with_pings = [&](absl::Duration server_min_interval) {
    config::ServerConfig config = testutil::TestConfig(dir_);
    config.store.sqlite_path = dir_.File(absl::StrCat(
        "keepalive-", absl::ToInt64Seconds(server_min_interval), ".sqlite"));
    config.grpc.min_client_ping_interval = server_min_interval;
    config.llm = YAML::Load(absl::StrCat("providers:\n  anthropic:\n    kind: anthropic\n"
                                         "    base_url: ", fake_->base_url(),
                                         "\n    api_key_file: ", dir_.File("anthropic.key"),
                                         "\n"));
    auto server = InProcessServer::Start(config);
    EXPECT_TRUE(server.ok()) << server.status();
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 1000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 1000);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
    auto channel = grpc::CreateCustomChannel((*server)->address(),
                                             grpc::InsecureChannelCredentials(), args);
    auto stub = v1::PipelineService::NewStub(channel);
    auto request = Inline(kSimple);
    request.set_no_cache(true);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::ExecutePipelineResponse response;
    return stub->ExecutePipeline(&context, request, &response);
  };
  fake_->SetLatency(absl::Seconds(6));
  grpc::Status tolerated = run_with_pings(absl::Seconds(1));
  EXPECT_TRUE(tolerated.ok()) << tolerated.error_message();
  grpc::Status refused = run_with_pings(absl::Seconds(10));
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
  fake_->SetLatency(absl::ZeroDuration());
}

}  // namespace
}  // namespace elexirion
