// Executes real-shaped workflows through the scripted LlmClient test double and checks the
// rendered prompts byte for byte against what pipeline_ex's prompt builder produces.
#include "server/pipeline/executor.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/pipeline/loader.h"
#include "server/pipeline/presets.h"
#include "tests/pipeline/scripted_llm_client.h"
#include "tests/pipeline/test_util.h"

namespace elexirion::pipeline {
namespace {

using json = nlohmann::json;
using ::testing::Contains;
using ::testing::HasSubstr;
using testing::ReadFile;
using testing::ScratchDir;
using testing::ScriptedLlmClient;
using testing::TestData;
using testing::WriteFile;

class ExecutorTest : public ::testing::Test {
 protected:
  std::unique_ptr<PipelineExecutor> MakeExecutor(PipelineExecutor::Options options = {}) {
    options.client = &client_;
    if (options.prompts_dir.empty()) options.prompts_dir = TestData("prompts");
    if (options.clock == Clock::Real()) options.clock = &clock_;
    auto executor = PipelineExecutor::Create(std::move(options));
    EXPECT_TRUE(executor.ok()) << executor.status();
    return std::move(*executor);
  }

  Pipeline Load(const std::string& file) {
    auto p = LoadPipeline(ReadFile(TestData(file)));
    EXPECT_TRUE(p.ok()) << p.status();
    return std::move(*p);
  }

  static Pipeline LoadText(const std::string& yaml) {
    auto p = LoadPipeline(yaml);
    EXPECT_TRUE(p.ok()) << p.status();
    return std::move(*p);
  }

  ExecutionResult Run(const Pipeline& pipeline, const json& inputs = json::object(),
                      ExecuteOptions options = {}) {
    options.include_prompts = true;
    if (!executor_) executor_ = MakeExecutor();
    auto result = executor_->Execute(pipeline, inputs, options);
    EXPECT_TRUE(result.ok()) << result.status();
    return std::move(*result);
  }

  ScriptedLlmClient client_;
  FakeClock clock_;
  std::unique_ptr<PipelineExecutor> executor_;
};

TEST_F(ExecutorTest, FixBugWorkflowRendersPipelineExPrompts) {
  client_.Reply("Analyze this error", "Root cause: a None item in cart (app/handlers.py).");
  client_.Reply("Find the code relevant", "handlers.py:42 total = sum(item.price ...)");
  client_.Reply("Suggest a fix", "Skip None items before summing.");
  const Pipeline pipeline = Load("fix_bug.yaml");
  ExecutionResult result = Run(pipeline);
  ASSERT_TRUE(result.ok()) << result.status;
  ASSERT_EQ(result.steps.size(), 3u);

  const std::string log = ReadFile(TestData("prompts/logs/error.log"));
  EXPECT_EQ(result.steps[0].prompt,
            log + "\nAnalyze this error: the root cause, the file involved, the severity.");
  EXPECT_EQ(result.steps[1].prompt,
            "Find the code relevant to this error analysis:\n"
            "Root cause: a None item in cart (app/handlers.py).");
  EXPECT_EQ(result.steps[2].prompt,
            "Suggest a fix. Error analysis:\n"
            "Root cause: a None item in cart (app/handlers.py).\n"
            "Relevant code:\n"
            "{\n"
            "  \"cost\": 0.001,\n"
            "  \"model\": \"haiku\",\n"
            "  \"success\": true,\n"
            "  \"text\": \"handlers.py:42 total = sum(item.price ...)\"\n"
            "}\n"
            "Explain the fix, the changes, the tests and any side effects.");
  EXPECT_EQ(result.steps[2].system_prompt, "You are a careful senior engineer.");

  const auto requests = client_.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].provider, "gemini");
  EXPECT_EQ(requests[0].model, "gemini-2.5-flash");
  EXPECT_EQ(requests[0].max_tokens, 2048);
  EXPECT_EQ(requests[0].temperature, 0.2);
  EXPECT_EQ(requests[1].provider, "anthropic");
  EXPECT_EQ(requests[1].model, "haiku");
  EXPECT_EQ(requests[2].model, "sonnet");

  EXPECT_EQ(result.final_output, "Skip None items before summing.");
  EXPECT_EQ(result.final_step, "suggest_fix");
  EXPECT_EQ(result.usage.llm_calls, 3);
  EXPECT_DOUBLE_EQ(result.usage.cost_usd, 0.003);
  const json& tokens = result.steps[0].result["tokens"];
  EXPECT_EQ(tokens["input"], static_cast<int64_t>(requests[0].messages[0].content.size() / 4 + 1));
  EXPECT_EQ(tokens["total"], tokens["input"].get<int64_t>() + tokens["output"].get<int64_t>());
  EXPECT_THAT(result.steps[1].ignored_options, Contains("claude_options.allowed_tools"));
  // No output directory configured: output_to_file is reported, not written.
  EXPECT_THAT(result.steps[2].ignored_options, Contains("output_to_file"));
  EXPECT_EQ(result.results["find_code"]["model"], "haiku");
}

TEST_F(ExecutorTest, OutputToFileIsWrittenUnderTheOutputDirectory) {
  ScratchDir out;
  PipelineExecutor::Options options;
  options.output_dir = out.path();
  executor_ = MakeExecutor(options);
  client_.Reply("", "ok");
  ExecutionResult result = Run(Load("fix_bug.yaml"));
  ASSERT_TRUE(result.ok()) << result.status;
  const std::string written = ReadFile(out / "fix_suggestion.md");
  EXPECT_EQ(json::parse(written)["text"], "ok");
  EXPECT_THAT(result.steps[2].ignored_options, ::testing::Not(Contains("output_to_file")));
}

TEST_F(ExecutorTest, CodeAnalysisTemplateUsesThePresetAndInputs) {
  client_.Reply("", "Findings: SQL injection.");
  const Pipeline pipeline = Load("code_analysis.yaml");
  ExecutionResult result = Run(pipeline, {{"code", "query = 'SELECT * FROM t WHERE id=' + id"},
                                          {"analysis_type", "security"}});
  ASSERT_TRUE(result.ok()) << result.status;
  const StepResult& step = result.steps[0];
  EXPECT_EQ(step.prompt,
            "Analyze the following code. Report concrete findings, recommendations and an "
            "overall severity.\nAnalysis type: security\n"
            "query = 'SELECT * FROM t WHERE id=' + id");
  const json analysis = PresetOptions("analysis");
  EXPECT_EQ(step.system_prompt,
            analysis["system_prompt"].get<std::string>() +
                "\n\nFocus on thorough analysis and provide structured, actionable "
                "recommendations.");
  EXPECT_EQ(client_.requests()[0].model, "opus");
  EXPECT_EQ(step.result["claude_smart_metadata"], (json{{"preset_applied", "analysis"},
                                                        {"environment_aware", false},
                                                        {"optimization_applied", true}}));
}

TEST_F(ExecutorTest, RefactoringTemplateChainsThroughPreviousResponse) {
  client_.Reply("ANALYSIS_PLACEHOLDER", "God module; split by responsibility.");
  client_.Reply("REFACTORING_PLACEHOLDER", "1. Extract the parser.");
  ExecutionResult result = Run(Load("refactoring.yaml"));
  ASSERT_TRUE(result.ok()) << result.status;
  EXPECT_EQ(result.steps[1].prompt,
            "REFACTORING_PLACEHOLDER\n"
            "{\n"
            "  \"claude_smart_metadata\": {\n"
            "    \"environment_aware\": false,\n"
            "    \"optimization_applied\": true,\n"
            "    \"preset_applied\": \"analysis\"\n"
            "  },\n"
            "  \"cost\": 0.001,\n"
            "  \"model\": \"opus\",\n"
            "  \"retry_info\": {\n"
            "    \"attempts_made\": 1,\n"
            "    \"final_attempt\": true,\n"
            "    \"max_retries\": 2\n"
            "  },\n"
            "  \"success\": true,\n"
            "  \"text\": \"God module; split by responsibility.\"\n"
            "}");
  EXPECT_EQ(client_.requests()[1].model, "sonnet");  // development preset
  EXPECT_EQ(result.final_output, "1. Extract the parser.");
}

TEST_F(ExecutorTest, ClaudeSmartPresetsMergeUnderStepOptions) {
  const Pipeline pipeline = Load("claude_smart_example.yaml");
  ExecutionResult result = Run(pipeline);
  ASSERT_TRUE(result.ok()) << result.status;
  const auto requests = client_.requests();
  ASSERT_EQ(requests.size(), 4u);
  EXPECT_EQ(requests[0].provider, "gemini");
  EXPECT_EQ(requests[0].max_tokens, 100);
  EXPECT_EQ(requests[1].model, "opus");  // analysis
  EXPECT_EQ(requests[2].model, "opus");  // production
  EXPECT_THAT(requests[2].system, HasSubstr("production assistant"));
  EXPECT_THAT(requests[2].system, HasSubstr("Prioritize safety, security"));
  EXPECT_EQ(requests[3].model, "sonnet");  // workflow default: development
  EXPECT_THAT(requests[3].system, HasSubstr("development assistant"));
  EXPECT_EQ(result.steps[1].result["claude_smart_metadata"]["environment_aware"], true);
  EXPECT_THAT(result.steps[1].ignored_options, Contains("claude_options.debug_mode"));

  // Step options override preset values, including nested maps.
  const Pipeline merged = LoadText(
      "workflow:\n  name: m\n  steps:\n    - name: s\n      type: claude_smart\n"
      "      preset: analysis\n      claude_options:\n        model: haiku\n"
      "        system_prompt: Be brief.\n        append_system_prompt: Use bullets.\n"
      "        retry_config: {max_retries: 0}\n"
      "      prompt: [{type: static, content: go}]\n");
  ExecutionResult r2 = Run(merged);
  ASSERT_TRUE(r2.ok()) << r2.status;
  EXPECT_EQ(client_.requests().back().model, "haiku");
  EXPECT_EQ(client_.requests().back().system, "Be brief.\n\nUse bullets.");
  EXPECT_FALSE(r2.steps[0].result.contains("retry_info"));
}

TEST_F(ExecutorTest, ConditionsSkipStepsAndRecordThem) {
  client_.Reply("first", "all good");
  const Pipeline pipeline = LoadText(
      "workflow:\n  name: c\n  steps:\n"
      "    - {name: a, type: claude, prompt: [{type: static, content: first}]}\n"
      "    - name: b\n      type: claude\n      condition: \"a.text contains 'good'\"\n"
      "      prompt: [{type: static, content: second}]\n"
      "    - name: c\n      type: claude\n      condition: {not: a.success}\n"
      "      prompt: [{type: static, content: third}]\n"
      "    - name: d\n      type: claude\n"
      "      prompt:\n        - {type: previous_response, step: c}\n"
      "        - {type: static, content: \"skipped={{steps.c.skipped}}\"}\n");
  ExecutionResult result = Run(pipeline);
  ASSERT_TRUE(result.ok()) << result.status;
  ASSERT_EQ(result.steps.size(), 4u);
  EXPECT_EQ(result.steps[1].status, StepStatus::kSucceeded);
  EXPECT_EQ(result.steps[2].status, StepStatus::kSkipped);
  EXPECT_EQ(result.steps[2].skip_reason, "Condition not met: {\"not\":\"a.success\"}");
  EXPECT_EQ(result.steps[3].prompt,
            "{\n  \"reason\": \"Condition not met: {\\\"not\\\":\\\"a.success\\\"}\",\n"
            "  \"skipped\": true,\n  \"success\": true\n}\nskipped=true");
  EXPECT_EQ(client_.call_count(), 3u);
}

TEST_F(ExecutorTest, TemplatesGlobalVarsAndSetVariable) {
  const Pipeline pipeline = LoadText(
      "workflow:\n  name: t\n  global_vars: {team: platform}\n  steps:\n"
      "    - name: init\n      type: set_variable\n      variables: {counter: 1, who: "
      "\"{{inputs.user}}\"}\n"
      "    - name: bump\n      type: set_variable\n      variables: {counter: \"{{state.counter + "
      "1}}\"}\n"
      "    - name: ask\n      type: claude\n      prompt:\n"
      "        - {type: static, content: \"{{global_vars.team}}/{{state.who}}/{{state.counter}}/"
      "{{inputs.missing}}/{{state.nope}}\"}\n");
  ExecutionResult result = Run(pipeline, {{"user", "ada"}});
  ASSERT_TRUE(result.ok()) << result.status;
  EXPECT_EQ(result.steps[0].result["variables_set"], json::array({"counter", "who"}));
  EXPECT_EQ(result.steps[2].prompt, "platform/ada/2/{{inputs.missing}}/");
  EXPECT_EQ(result.final_step, "ask");
}

TEST_F(ExecutorTest, StepFailureHaltsThePipeline) {
  client_.Fail("second", absl::UnavailableError("provider overloaded"));
  const Pipeline pipeline = LoadText(
      "workflow:\n  name: f\n  steps:\n"
      "    - {name: a, type: claude, prompt: [{type: static, content: first}]}\n"
      "    - {name: b, type: claude, prompt: [{type: static, content: second}]}\n"
      "    - {name: c, type: claude, prompt: [{type: static, content: third}]}\n");
  ExecutionResult result = Run(pipeline);
  EXPECT_EQ(result.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(result.status.message()), HasSubstr("step \"b\" failed"));
  ASSERT_EQ(result.steps.size(), 2u);
  EXPECT_EQ(result.steps[1].status, StepStatus::kFailed);
  EXPECT_EQ(result.steps[1].error.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(result.final_step, "a");
  EXPECT_EQ(client_.call_count(), 2u);
}

TEST_F(ExecutorTest, ExtractPathsStrictAndLenient) {
  client_.Reply("first", "hello");
  const std::string base =
      "workflow:\n  name: e\n  steps:\n"
      "    - {name: a, type: claude, prompt: [{type: static, content: first}]}\n"
      "    - name: b\n      type: claude\n      prompt:\n"
      "        - {type: previous_response, step: a, extract: nope STRICT}\n";
  std::string strict = base;
  strict.replace(strict.find(" STRICT"), 7, "");
  ExecutionResult r1 = Run(LoadText(strict));
  EXPECT_EQ(r1.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r1.status.message()),
              HasSubstr("Field 'nope' not found in previous response. Available fields: cost, "
                        "model, success, text"));
  std::string lenient = base;
  lenient.replace(lenient.find(" STRICT"), 7, ", strict: false");
  ExecutionResult r2 = Run(LoadText(lenient));
  ASSERT_TRUE(r2.ok()) << r2.status;
  EXPECT_EQ(r2.steps[1].prompt, "nil");
}

TEST_F(ExecutorTest, JsonOutputIsParsedAndVisibleToLaterSteps) {
  client_.Reply("Classify", "```json\n{\"severity\": \"high\", \"text\": \"ignored\"}\n```");
  const Pipeline pipeline = LoadText(
      "workflow:\n  name: j\n  steps:\n"
      "    - name: check\n      type: gemini\n      response_mime_type: application/json\n"
      "      prompt: [{type: static, content: Classify}]\n"
      "    - name: escalate\n      type: claude\n      condition: \"check.severity == 'high'\"\n"
      "      prompt: [{type: static, content: \"Escalate {{steps.check.severity}} issue\"}]\n");
  ExecutionResult result = Run(pipeline);
  ASSERT_TRUE(result.ok()) << result.status;
  EXPECT_TRUE(client_.requests()[0].json_response);
  ASSERT_TRUE(result.steps[0].parsed_json.has_value());
  EXPECT_EQ((*result.steps[0].parsed_json)["severity"], "high");
  EXPECT_EQ(result.steps[0].result["severity"], "high");
  EXPECT_NE(result.steps[0].result["text"], "ignored");
  EXPECT_EQ(result.steps[1].prompt, "Escalate high issue");
}

TEST_F(ExecutorTest, ProviderResolverAndExecutionOverride) {
  PipelineExecutor::Options options;
  options.provider = [](const std::string& type) {
    return type == "gemini" ? std::string("vertex") : std::string("local");
  };
  executor_ = MakeExecutor(options);
  const Pipeline pipeline = Load("simple_test.yaml");
  ASSERT_TRUE(Run(pipeline).ok());
  auto requests = client_.requests();
  EXPECT_EQ(requests[0].provider, "vertex");
  EXPECT_EQ(requests[1].provider, "local");
  EXPECT_EQ(requests[1].model, "haiku");

  ExecuteOptions override;
  override.provider_override = "simulated";
  override.model_override = "tiny";
  override.rollout_id = "r7";
  override.no_cache = true;
  ASSERT_TRUE(Run(pipeline, json::object(), override).ok());
  requests = client_.requests();
  for (size_t i = 2; i < 4; ++i) {
    EXPECT_EQ(requests[i].provider, "simulated");
    EXPECT_EQ(requests[i].model, "tiny");
    EXPECT_EQ(requests[i].rollout_id, "r7");
    EXPECT_TRUE(requests[i].no_cache);
  }
  EXPECT_EQ(DefaultProviderForStepType("claude_robust"), "anthropic");
  EXPECT_EQ(DefaultProviderForStepType("parallel_claude"), "anthropic");
  EXPECT_EQ(DefaultProviderForStepType("gemini"), "gemini");
}

TEST_F(ExecutorTest, DeadlineCancellationAndBudget) {
  const Pipeline pipeline = Load("simple_test.yaml");
  ExecuteOptions past;
  past.deadline = absl::Now() - absl::Seconds(1);
  ExecutionResult r1 = Run(pipeline, json::object(), past);
  EXPECT_EQ(r1.status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(client_.call_count(), 0u);

  CancellationToken cancel;
  cancel.Cancel("user stopped it");
  ExecuteOptions cancelled;
  cancelled.cancel = &cancel;
  ExecutionResult r2 = Run(pipeline, json::object(), cancelled);
  EXPECT_EQ(r2.status.code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(std::string(r2.status.message()), HasSubstr("user stopped it"));

  llm::UsageAccount account(llm::BudgetLimits{1, 0});
  ExecuteOptions budget;
  budget.account = &account;
  ExecutionResult r3 = Run(pipeline, json::object(), budget);
  EXPECT_EQ(r3.status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(r3.steps.size(), 2u);
  EXPECT_EQ(account.Snapshot().llm_calls, 1);

  // A robust step never hides a spent budget behind its fallback.
  llm::UsageAccount spent(llm::BudgetLimits{1, 0});
  spent.Add(llm::Usage{1, 0, 0, 0, 0});
  ExecuteOptions spent_options;
  spent_options.account = &spent;
  ExecutionResult r4 = Run(LoadText("workflow:\n  name: r\n  steps:\n    - name: s\n"
                                    "      type: claude_robust\n"
                                    "      prompt: [{type: static, content: x}]\n"),
                           json::object(), spent_options);
  EXPECT_EQ(r4.status.code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(ExecutorTest, ClaudeRobustRetriesThenFallsBack) {
  client_.Fail("flaky", absl::UnavailableError("temporary_error: upstream"), 2);
  client_.Reply("flaky", "recovered");
  const Pipeline flaky = LoadText(
      "workflow:\n  name: r\n  steps:\n    - name: s\n      type: claude_robust\n"
      "      retry_config: {max_retries: 3, base_delay_ms: 500, backoff_strategy: linear}\n"
      "      prompt: [{type: static, content: flaky}]\n");
  const absl::Time fake_start = clock_.Now();
  ExecutionResult r1 = Run(flaky);
  ASSERT_TRUE(r1.ok()) << r1.status;
  EXPECT_EQ(r1.final_output, "recovered");
  EXPECT_EQ(r1.steps[0].result["robustness_metadata"]["attempt_number"], 3);
  EXPECT_EQ(r1.steps[0].result["robustness_metadata"]["recovery_successful"], true);
  EXPECT_EQ(r1.steps[0].usage.llm_calls, 1);
  EXPECT_EQ(clock_.Now() - fake_start, absl::Milliseconds(500 + 1000));  // linear backoff

  client_.Fail("doomed", absl::UnavailableError("temporary_error: down"));
  const Pipeline doomed = LoadText(
      "workflow:\n  name: r\n  steps:\n    - name: s\n      type: claude_robust\n"
      "      retry_config: {max_retries: 1, base_delay_ms: 10}\n"
      "      prompt: [{type: static, content: doomed}]\n"
      "    - name: after\n      type: claude\n"
      "      prompt: [{type: previous_response, step: s, extract: fallback_type}]\n");
  ExecutionResult r2 = Run(doomed);
  ASSERT_TRUE(r2.ok()) << r2.status;
  EXPECT_EQ(r2.steps[0].status, StepStatus::kSucceeded);
  EXPECT_EQ(r2.steps[0].result["degraded_mode"], true);
  EXPECT_THAT(r2.steps[0].text, HasSubstr("Original error: temporary_error: down\nStep: s\n"));
  EXPECT_EQ(r2.steps[1].prompt, "graceful_degradation");
}

TEST_F(ExecutorTest, ClaudeBatchConsolidatesTasks) {
  client_.Reply("alpha", "A done");
  client_.Fail("beta", absl::InvalidArgumentError("bad request"));
  const Pipeline pipeline = LoadText(
      "workflow:\n  name: b\n  steps:\n    - name: batch\n      type: claude_batch\n"
      "      claude_options: {retry_config: {max_retries: 0}}\n"
      "      tasks:\n        - {task_id: one, prompt: alpha}\n"
      "        - prompt: [{type: static, content: beta}]\n"
      "        - {file: logs/error.log}\n");
  ExecutionResult result = Run(pipeline);
  ASSERT_TRUE(result.ok()) << result.status;
  const json& r = result.steps[0].result;
  EXPECT_EQ(r["total_tasks"], 3);
  EXPECT_EQ(r["successful_tasks"], 2);
  EXPECT_EQ(r["failed_tasks"], 1);
  EXPECT_EQ(r["batch_results"][1]["task_id"], "task_1");
  EXPECT_EQ(r["batch_results"][1]["status"], "error");
  EXPECT_EQ(r["claude_batch_metadata"]["files_processed"], json::array({"logs/error.log"}));
  const std::string log = ReadFile(TestData("prompts/logs/error.log"));
  const std::string third_text = "response to: " + log.substr(0, 40);
  EXPECT_EQ(result.steps[0].text,
            "# Batch Processing Results\n\n**Total Tasks**: 3\n**Successful**: 2\n"
            "**Failed**: 1\n\n"
            "## Task: one\n**File**: N/A\n**Status**: Success\n\nA done\n"
            "\n\n---\n\n"
            "## Task: task_2\n**File**: logs/error.log\n**Status**: Success\n\n" +
                third_text +
                "\n"
                "\n\n---\n\n"
                "## Task: task_1\n**File**: N/A\n**Status**: ERROR\n**Error**: bad request\n\n");
  EXPECT_EQ(result.steps[0].usage.llm_calls, 2);
}

TEST_F(ExecutorTest, ParallelClaudeCombinesTasks) {
  client_.Reply("docs", "D");
  client_.Reply("tests", "T");
  const Pipeline pipeline = LoadText(
      "workflow:\n  name: p\n  steps:\n    - name: par\n      type: parallel_claude\n"
      "      parallel_tasks:\n"
      "        - {id: documentation, claude_options: {model: haiku}, "
      "prompt: [{type: static, content: docs}]}\n"
      "        - {id: testing, prompt: [{type: static, content: tests}]}\n");
  ExecutionResult result = Run(pipeline);
  ASSERT_TRUE(result.ok()) << result.status;
  EXPECT_EQ(result.steps[0].text, "\n===[documentation]===\nD\n\n===[testing]===\nT");
  EXPECT_EQ(result.steps[0].result["individual_results"]["documentation"]["model"], "haiku");
  EXPECT_EQ(result.steps[0].usage.llm_calls, 2);
}

TEST_F(ExecutorTest, ClaudeExtractAndSessionDecorateResults) {
  client_.Reply("extract", "See ```x = 1``` and https://example.com/a please");
  client_.Reply("chat", "hi there");
  const Pipeline pipeline = LoadText(
      "workflow:\n  name: x\n  steps:\n    - name: ex\n      type: claude_extract\n"
      "      extraction_config:\n        format: json\n"
      "        post_processing: [extract_links]\n        include_metadata: true\n"
      "      prompt: [{type: static, content: extract}]\n"
      "    - name: talk\n      type: claude_session\n"
      "      session_config: {session_name: support, persist: true}\n"
      "      prompt: [{type: static, content: chat}]\n");
  ExecutionResult result = Run(pipeline);
  ASSERT_TRUE(result.ok()) << result.status;
  EXPECT_TRUE(client_.requests()[0].json_response);
  EXPECT_EQ(result.steps[0].text,
            "{\"content\":\"See ```x = 1``` and https://example.com/a please\",\"format\":"
            "\"json\"}\n## Links Extracted\n- https://example.com/a\n");
  EXPECT_EQ(result.steps[0].result["extraction_applied"], true);
  EXPECT_EQ(result.steps[0].result["extraction_metadata"]["format"], "json");
  EXPECT_EQ(result.steps[1].result["session_id"], "support");
  EXPECT_EQ(result.steps[1].result["claude_session_metadata"]["session_persisted"], true);
  EXPECT_EQ(client_.requests()[0].model, "opus");  // claude_extract defaults to analysis
}

TEST_F(ExecutorTest, FilePartsAreConfinedAtRunTime) {
  ScratchDir root;
  WriteFile(root / "prompts/ok.txt", "inside");
  WriteFile(root / "secret.txt", "secret");
  ASSERT_EQ(symlink((root / "secret.txt").c_str(), (root / "prompts/link").c_str()), 0);
  ASSERT_EQ(mkfifo((root / "prompts/fifo").c_str(), 0600), 0);
  PipelineExecutor::Options options;
  options.prompts_dir = root / "prompts";
  executor_ = MakeExecutor(options);
  const Pipeline pipeline = LoadText(
      "workflow:\n  name: f\n  steps:\n    - name: read\n      type: claude\n"
      "      prompt: [{type: file, path: \"{{inputs.file}}\"}]\n");
  EXPECT_TRUE(Run(pipeline, {{"file", "ok.txt"}}).ok());
  EXPECT_EQ(client_.requests().back().messages[0].content, "inside");
  for (const char* bad : {"../secret.txt", "/etc/passwd", "link", "fifo", "missing.txt"}) {
    ExecutionResult r = Run(pipeline, {{"file", bad}});
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_THAT(std::string(r.status.message()), HasSubstr("file prompt part")) << bad;
  }
  EXPECT_EQ(client_.call_count(), 1u);
}

TEST_F(ExecutorTest, RejectsBadArguments) {
  executor_ = MakeExecutor();
  const Pipeline pipeline = Load("simple_test.yaml");
  EXPECT_EQ(executor_->Execute(pipeline, json::array()).status().code(),
            absl::StatusCode::kInvalidArgument);
  ProgramState program;
  program.steps["nope"].instruction = "x";
  ExecuteOptions options;
  options.program = &program;
  EXPECT_EQ(executor_->Execute(pipeline, json::object(), options).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PipelineExecutor::Create({}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ExecutorTest, ConcurrentExecutionsShareOneExecutor) {
  client_.SetHandler([](const llm::LlmRequest& request) -> absl::StatusOr<llm::LlmResponse> {
    llm::LlmResponse r;
    r.text = "echo[" + request.messages[0].content.substr(0, 200) + "]";
    r.cost_usd = 0.001;
    r.model = request.model;
    return r;
  });
  executor_ = MakeExecutor();
  const Pipeline pipeline = Load("code_analysis.yaml");
  constexpr int kThreads = 8;
  constexpr int kRuns = 40;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRuns; ++i) {
        const std::string code = absl::StrCat("code_", t, "_", i);
        auto result = executor_->Execute(pipeline, {{"code", code}, {"analysis_type", "perf"}});
        if (!result.ok() || !result->ok() || result->final_output.find(code) == std::string::npos) {
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(client_.call_count(), static_cast<size_t>(kThreads * kRuns));
}

}  // namespace
}  // namespace elexirion::pipeline
