// The step types beyond single model calls (for_loop, while_loop, nested pipelines,
// set_variable's two forms, data_transform, gemini_instructor, claude_session conversations,
// file_ops) on pipelines written for this project in pipeline_ex's shapes, their limits and
// bad shapes, and how a program reaches LLM steps inside loops and nested pipelines.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/pipeline/executor.h"
#include "server/pipeline/loader.h"
#include "server/pipeline/optimized_yaml.h"
#include "server/pipeline/program.h"
#include "tests/pipeline/scripted_llm_client.h"
#include "tests/pipeline/test_util.h"

namespace elexirion::pipeline {
namespace {

using json = nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::ReadFile;
using testing::ScratchDir;
using testing::ScriptedLlmClient;
using testing::TestData;
using testing::WriteFile;

class StepTypesTest : public ::testing::Test {
 protected:
  LoadOptions Options() const {
    LoadOptions options;
    options.prompts_dir = TestData("prompts");
    return options;
  }

  Pipeline Load(const std::string& yaml, const LoadOptions& options) {
    auto p = LoadPipeline(yaml, options);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? std::move(*p) : Pipeline();
  }
  Pipeline Load(const std::string& yaml) { return Load(yaml, Options()); }

  absl::Status LoadError(const std::string& yaml, const LoadOptions& options) {
    auto p = LoadPipeline(yaml, options);
    EXPECT_FALSE(p.ok()) << "loaded:\n" << yaml;
    return p.ok() ? absl::OkStatus() : p.status();
  }
  absl::Status LoadError(const std::string& yaml) { return LoadError(yaml, Options()); }

  ExecutionResult Run(const Pipeline& pipeline, const json& inputs = json::object(),
                      ExecuteOptions options = {}, PipelineExecutor::Options exec = {}) {
    options.include_prompts = true;
    exec.client = &client_;
    if (exec.prompts_dir.empty()) exec.prompts_dir = TestData("prompts");
    exec.clock = &clock_;
    auto executor = PipelineExecutor::Create(std::move(exec));
    EXPECT_TRUE(executor.ok()) << executor.status();
    auto result = (*executor)->Execute(pipeline, inputs, options);
    EXPECT_TRUE(result.ok()) << result.status();
    return std::move(*result);
  }

  static const StepResult* Find(const ExecutionResult& result, const std::string& name,
                                int occurrence = 0) {
    for (const StepResult& s : result.steps) {
      if (s.name == name && occurrence-- == 0) return &s;
    }
    return nullptr;
  }

  ScriptedLlmClient client_;
  FakeClock clock_;
};

TEST_F(StepTypesTest, ForLoopAndNestedPipelineRunEndToEnd) {
  client_.Reply("Summarize the risks in cart.py", "cart: none check missing");
  client_.Reply("Summarize the risks in auth.py", "auth: fine");
  client_.Reply("Review this code", "verdict: one bug");
  client_.Reply("Write the report", "report done");
  const Pipeline pipeline = Load(ReadFile(TestData("review_loop.yaml")));
  ExecutionResult result = Run(pipeline, {{"code", "total = sum(x.price for x in cart)"}});
  ASSERT_TRUE(result.ok()) << result.status;

  std::vector<std::string> names;
  for (const StepResult& s : result.steps) names.push_back(s.name);
  EXPECT_THAT(names, ElementsAre("files", "each_file/summarize", "each_file/summarize", "each_file",
                                 "review/analyze", "review", "report"));
  EXPECT_EQ(Find(result, "each_file/summarize", 0)->prompt,
            "Summarize the risks in cart.py (item 0 of 2).\ncart.py");
  EXPECT_EQ(Find(result, "each_file/summarize", 1)->prompt,
            "Summarize the risks in auth.py (item 1 of 2).\nauth.py");
  const json& loop = result.results["each_file"];
  EXPECT_EQ(loop["total_items"], 2);
  EXPECT_EQ(loop["completed_items"], 2);
  EXPECT_EQ(loop["success"], true);
  EXPECT_EQ(loop["iterations"][1]["item"], "auth.py");
  EXPECT_EQ(loop["iterations"][0]["results"]["summarize"]["text"], "cart: none check missing");
  // Sub-step results stay visible after the loop (the last iteration's); the loop context
  // does not.
  EXPECT_EQ(result.results["summarize"]["text"], "auth: fine");
  EXPECT_FALSE(result.results.contains("loop"));

  EXPECT_EQ(Find(result, "review/analyze")->prompt,
            "Review this code for bugs.\ntotal = sum(x.price for x in cart)");
  // A nested pipeline step with inputs wraps its extracted outputs in {"result": ...}.
  EXPECT_EQ(result.results["review"], json({{"result", {{"verdict", "verdict: one bug"}}}}));
  EXPECT_EQ(Find(result, "report")->prompt, "Write the report.\n2\nverdict: one bug");
  EXPECT_EQ(result.final_output, "report done");
  EXPECT_EQ(client_.call_count(), 4u);
}

TEST_F(StepTypesTest, LlmStepsInsideLoopsAndNestedPipelinesAreOptimizable) {
  const Pipeline pipeline = Load(ReadFile(TestData("review_loop.yaml")));
  std::vector<std::string> names;
  for (const OptimizableStep& s : ListOptimizableSteps(pipeline)) names.push_back(s.name);
  EXPECT_THAT(names, ElementsAre("each_file/summarize", "review/analyze", "report"));
  ASSERT_NE(pipeline.FindStep("review/analyze"), nullptr);
  EXPECT_EQ(pipeline.FindStep("review/analyze")->type, "claude");

  ProgramState program;
  program.steps["each_file/summarize"].instruction = "List each risk of {{loop.file}} tersely.";
  program.steps["review/analyze"].instruction = "Find the bugs.";
  ExecuteOptions options;
  options.program = &program;
  ExecutionResult result = Run(pipeline, {{"code", "x = 1"}}, options);
  ASSERT_TRUE(result.ok()) << result.status;
  EXPECT_EQ(Find(result, "each_file/summarize", 0)->prompt,
            "List each risk of cart.py tersely.\ncart.py");
  EXPECT_EQ(Find(result, "each_file/summarize", 1)->prompt,
            "List each risk of auth.py tersely.\nauth.py");
  EXPECT_EQ(Find(result, "review/analyze")->prompt, "Find the bugs.\nx = 1");

  // An unknown nested path is refused like an unknown step.
  ProgramState bad;
  bad.steps["each_file/nope"].instruction = "x";
  options.program = &bad;
  auto executor = PipelineExecutor::Create({.client = &client_});
  ASSERT_TRUE(executor.ok());
  auto refused = (*executor)->Execute(pipeline, json::object(), options);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(StepTypesTest, OptimizedYamlInlinesALearnedPipelineFile) {
  const Pipeline pipeline = Load(ReadFile(TestData("review_loop.yaml")));
  ProgramState program;
  program.steps["each_file/summarize"].instruction = "Terse risks of {{loop.file}}.";
  program.steps["review/analyze"].instruction = "Find the bugs.";
  auto yaml = RenderOptimizedYaml(pipeline, program);
  ASSERT_TRUE(yaml.ok()) << yaml.status();
  EXPECT_THAT(*yaml, ::testing::Not(HasSubstr("pipeline_file")));
  // The export renders, without a program, what the program renders.
  const Pipeline exported = Load(*yaml);
  ExecutionResult result = Run(exported, {{"code", "x = 1"}});
  ASSERT_TRUE(result.ok()) << result.status;
  EXPECT_EQ(Find(result, "each_file/summarize", 0)->prompt, "Terse risks of cart.py.\ncart.py");
  EXPECT_EQ(Find(result, "review/analyze")->prompt, "Find the bugs.\nx = 1");
}

TEST_F(StepTypesTest, ForLoopDataSourcesAndIterationFailures) {
  client_.Fail("bad", absl::UnavailableError("provider overloaded"));
  const std::string yaml = R"(
workflow:
  name: sources
  steps:
    - name: plan
      type: set_variable
      variable: plan
      value: {items: [{name: good1}, {name: bad}, {name: good2}]}
    - name: each
      type: for_loop
      iterator: task
      data_source: plan:items
      break_on_error: BREAK
      steps:
        - name: work
          type: claude
          prompt: [{type: static, content: "do {{loop.task.name}}"}]
)";
  // data_source "<step>:<path>" reads a step result; here the set_variable result has no
  // items, so the step fails naming the field.
  ExecutionResult missing = Run(Load(absl::StrReplaceAll(yaml, {{"BREAK", "true"}})));
  EXPECT_EQ(missing.status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status.message(), HasSubstr("data_source: Field not found in step result"));

  // "<name>" reads a variable.
  const std::string by_variable = absl::StrReplaceAll(yaml, {{"plan:items", "plan"}});
  const Pipeline stop = Load(absl::StrReplaceAll(by_variable, {{"BREAK", "true"}}));
  ExecutionResult not_a_list = Run(stop);
  EXPECT_THAT(not_a_list.status.message(), HasSubstr("Data source must resolve to a list"));

  const std::string list_yaml = absl::StrReplaceAll(
      by_variable, {{"value: {items: [{name: good1}, {name: bad}, {name: good2}]}",
                     "value: [{name: good1}, {name: bad}, {name: good2}]"}});
  ExecutionResult stopped = Run(Load(absl::StrReplaceAll(list_yaml, {{"BREAK", "true"}})));
  ASSERT_TRUE(stopped.ok()) << stopped.status;  // pipeline_ex records the failure in the loop
  const json& loop = stopped.results["each"];
  EXPECT_EQ(loop["success"], false);
  EXPECT_EQ(loop["completed_items"], 1);
  ASSERT_EQ(loop["iterations"].size(), 2u);
  EXPECT_THAT(loop["iterations"][1]["error"].get<std::string>(), HasSubstr("provider overloaded"));

  ExecutionResult continued = Run(Load(absl::StrReplaceAll(list_yaml, {{"BREAK", "false"}})));
  ASSERT_TRUE(continued.ok()) << continued.status;
  EXPECT_EQ(continued.results["each"]["iterations"].size(), 3u);
  EXPECT_EQ(continued.results["each"]["completed_items"], 2);
}

TEST_F(StepTypesTest, WhileLoopRunsUntilItsConditionTurnsFalse) {
  int checks = 0;
  client_.SetHandler([&](const llm::LlmRequest&) -> absl::StatusOr<llm::LlmResponse> {
    llm::LlmResponse r;
    r.text = ++checks < 3 ? R"({"done": false})" : R"({"done": true})";
    return r;
  });
  const std::string yaml = R"(
workflow:
  name: polish
  steps:
    - name: check
      type: claude
      output_schema: {type: object}
      prompt: [{type: static, content: "is it done?"}]
    - name: improve
      type: while_loop
      condition: "check.done == false"
      max_iterations: MAX
      steps:
        - name: check
          type: claude
          output_schema: {type: object}
          prompt: [{type: static, content: "improve it, round {{loop.iteration}}"}]
)";
  ExecutionResult result = Run(Load(absl::StrReplaceAll(yaml, {{"MAX", "5"}})));
  ASSERT_TRUE(result.ok()) << result.status;
  EXPECT_EQ(result.results["improve"],
            json({{"success", true}, {"iterations", 2}, {"condition_met", false}}));
  EXPECT_EQ(Find(result, "improve/check", 1)->prompt, "improve it, round 1");

  checks = -100;  // never done
  ExecutionResult capped = Run(Load(absl::StrReplaceAll(yaml, {{"MAX", "3"}})));
  ASSERT_TRUE(capped.ok()) << capped.status;
  EXPECT_EQ(capped.results["improve"]["max_iterations_reached"], true);
  EXPECT_EQ(capped.results["improve"]["iterations"], 3);
}

TEST_F(StepTypesTest, InlineNestedPipelineWithoutOutputsReturnsItsResults) {
  client_.Reply("", "child says hi");
  const Pipeline pipeline = Load(R"(
workflow:
  name: outer
  global_vars: {team: core}
  steps:
    - name: child
      type: pipeline
      config: {inherit_context: true}
      pipeline:
        name: inner
        steps:
          - name: greet
            type: claude
            prompt: [{type: static, content: "hi from {{global_vars.team}} to {{inputs.user}}"}]
)");
  ExecutionResult result = Run(pipeline, {{"user", "ada"}});
  ASSERT_TRUE(result.ok()) << result.status;
  EXPECT_EQ(Find(result, "child/greet")->prompt, "hi from core to ada");
  EXPECT_EQ(result.results["child"]["greet"]["text"], "child says hi");
  EXPECT_EQ(result.final_output, "child says hi");
}

TEST_F(StepTypesTest, NestedPipelineFailuresAndMissingOutputs) {
  client_.Fail("explode", absl::UnavailableError("provider overloaded"));
  const std::string yaml = R"(
workflow:
  name: outer
  steps:
    - name: child
      type: pipeline
      OUTPUTS
      pipeline:
        name: inner
        steps:
          - {name: a, type: claude, prompt: [{type: static, content: PROMPT}]}
)";
  ExecutionResult failed =
      Run(Load(absl::StrReplaceAll(yaml, {{"OUTPUTS", ""}, {"PROMPT", "explode"}})));
  EXPECT_EQ(failed.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(failed.status.message(), HasSubstr("Nested pipeline 'inner' failed"));
  ExecutionResult missing =
      Run(Load(absl::StrReplaceAll(yaml, {{"OUTPUTS", "outputs: [nope]"}, {"PROMPT", "fine"}})));
  EXPECT_EQ(missing.status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status.message(), HasSubstr("Output 'nope' not found in results"));
}

TEST_F(StepTypesTest, SetVariableBothForms) {
  client_.Reply("", "ok");
  const Pipeline pipeline = Load(R"(
workflow:
  name: vars
  steps:
    - {name: many, type: set_variable, variables: {a: 1, b: two}}
    - {name: one, type: set_variable, variable: c, value: "{{state.a + 2}}"}
    - {name: use, type: claude, prompt: [{type: static, content: "{{state.a}}-{{b}}-{{state.c}}"}]}
)");
  ExecutionResult result = Run(pipeline);
  ASSERT_TRUE(result.ok()) << result.status;
  EXPECT_EQ(result.results["one"],
            json({{"variables_set", {"c"}}, {"scope", "global"}, {"variable_count", 1}}));
  EXPECT_EQ(Find(result, "use")->prompt, "1-two-3");
}

TEST_F(StepTypesTest, DataTransformOperations) {
  const Pipeline pipeline = Load(R"(
workflow:
  name: orders
  steps:
    - name: data
      type: set_variable
      variables:
        orders:
          - {id: 1, user: u1, status: paid, amount: 30, priority: "1"}
          - {id: 2, user: u2, status: open, amount: 10, priority: "2"}
          - {id: 3, user: u1, status: paid, amount: 50, priority: "3"}
        users:
          - {user: u1, email: a@x}
          - {user: u2, email: b@x}
    - name: paid
      type: data_transform
      input_source: orders
      output_field: paid_orders
      operations:
        - {operation: filter, field: status, condition: "status == 'paid'"}
        - {operation: map, field: priority, mapping: {"1": high, "3": low}}
        - {operation: join, left_field: user, right_source: users, join_key: user}
        - {operation: sort, field: amount, order: desc}
    - name: total
      type: data_transform
      input_source: "previous_response:paid:paid_orders"
      operations:
        - {operation: aggregate, field: amount, function: sum}
    - name: by_user
      type: data_transform
      input_source: orders
      operations:
        - {operation: filter, condition: "amount >= 30"}
        - {operation: group_by, field: user}
)");
  ExecutionResult result = Run(pipeline);
  ASSERT_TRUE(result.ok()) << result.status;
  const json& paid = result.results["paid"]["paid_orders"];
  ASSERT_EQ(paid.size(), 2u);
  EXPECT_EQ(paid[0]["id"], 3);
  EXPECT_EQ(paid[0]["priority"], "low");
  EXPECT_EQ(paid[0]["email"], "a@x");
  EXPECT_EQ(paid[1]["priority"], "high");
  EXPECT_EQ(result.results["paid"]["metadata"],
            json({{"operation_count", 4}, {"input_type", "list"}, {"output_type", "list"}}));
  EXPECT_EQ(result.results["total"]["total"], 80);
  EXPECT_EQ(result.results["by_user"]["by_user"].size(), 1u);
  EXPECT_EQ(result.results["by_user"]["by_user"]["u1"].size(), 2u);
  EXPECT_EQ(client_.call_count(), 0u);

  const Pipeline missing = Load(
      "workflow:\n  name: m\n  steps:\n"
      "    - {name: t, type: data_transform, input_source: \"previous_response:nope\"}\n");
  ExecutionResult failed = Run(missing);
  EXPECT_EQ(failed.status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(failed.status.message(),
              HasSubstr("Input source 'previous_response:nope' not found"));

  // No `operations` at all (found by the fuzzer: the count read a missing key): the input
  // passes through unchanged, zero operations.
  const Pipeline bare = Load(
      "workflow:\n  name: b\n  steps:\n"
      "    - {name: data, type: set_variable, variables: {items: [1, 2]}}\n"
      "    - {name: t, type: data_transform, input_source: items}\n");
  ExecutionResult passed = Run(bare);
  ASSERT_TRUE(passed.ok()) << passed.status;
  EXPECT_EQ(passed.results["t"]["t"], json({1, 2}));
  EXPECT_EQ(passed.results["t"]["metadata"]["operation_count"], 0);
}

TEST_F(StepTypesTest, GeminiInstructorAsksForTheResponseSchema) {
  client_.Reply("", R"({"text": "fine", "analysis": "no issues", "summary": "ok"})");
  const Pipeline pipeline = Load(R"(
workflow:
  name: structured
  steps:
    - name: assess
      type: gemini_instructor
      prompt: [{type: static, content: "Assess the code quality."}]
)");
  ExecutionResult result = Run(pipeline);
  ASSERT_TRUE(result.ok()) << result.status;
  const llm::LlmRequest request = client_.requests().at(0);
  EXPECT_TRUE(request.json_response);
  EXPECT_EQ(request.provider, "gemini");
  const json schema = json::parse(request.response_schema);
  EXPECT_EQ(schema["required"], json::array({"text"}));
  EXPECT_TRUE(schema["properties"].contains("analysis"));
  EXPECT_EQ(request.temperature, 0.7);
  EXPECT_EQ(request.max_tokens, 2048);
  EXPECT_EQ(result.results["assess"]["analysis"], "no issues");
  EXPECT_EQ(result.final_output, "fine");
  EXPECT_TRUE(pipeline.steps[0].IsOptimizable());

  // A declared schema is sent as is; a response missing a required field fails the step.
  client_.SetHandler([](const llm::LlmRequest&) -> absl::StatusOr<llm::LlmResponse> {
    llm::LlmResponse r;
    r.text = R"({"other": 1})";
    return r;
  });
  const Pipeline declared = Load(R"(
workflow:
  name: structured
  steps:
    - name: score
      type: gemini_instructor
      response_schema:
        type: object
        properties: {score: {type: integer}}
        required: [score]
      prompt: [{type: static, content: "Score it."}]
)");
  ExecutionResult failed = Run(declared);
  EXPECT_THAT(failed.status.message(), HasSubstr("misses required field \"score\""));
  EXPECT_EQ(json::parse(client_.requests().back().response_schema)["required"],
            json::array({"score"}));
}

TEST_F(StepTypesTest, ClaudeSessionSendsConversationTurns) {
  client_.Reply("", "answer");
  const Pipeline pipeline = Load(R"(
workflow:
  name: chat
  steps:
    - name: session
      type: claude_session
      conversation:
        - {role: user, content: "My code is {{inputs.code}}"}
        - {role: assistant, content: "Noted."}
      prompt: [{type: static, content: "What is wrong with it?"}]
)");
  ExecutionResult result = Run(pipeline, {{"code", "x = 1/0"}});
  ASSERT_TRUE(result.ok()) << result.status;
  const llm::LlmRequest request = client_.requests().at(0);
  ASSERT_EQ(request.messages.size(), 3u);
  EXPECT_EQ(request.messages[0].role, "user");
  EXPECT_EQ(request.messages[0].content, "My code is x = 1/0");
  EXPECT_EQ(request.messages[1].role, "assistant");
  EXPECT_EQ(request.messages[2].content, "What is wrong with it?");
  EXPECT_TRUE(pipeline.steps[0].IsOptimizable());
}

TEST_F(StepTypesTest, FileOpsStayInsideTheOutputDirectory) {
  ScratchDir out;
  WriteFile(out / "in/data.csv", "name,score\nada,9\nbob,7\n");
  const Pipeline pipeline = Load(R"(
workflow:
  name: files
  steps:
    - {name: copy, type: file_ops, operation: copy, source: in/data.csv, destination: work/data.csv}
    - {name: convert, type: file_ops, operation: convert, source: ./work/data.csv, destination: work/data.json, format: csv_to_json}
    - {name: move, type: file_ops, operation: move, source: work/data.csv, destination: archive/data.csv}
    - {name: list, type: file_ops, operation: list, path: work, pattern: "\\.json$"}
    - name: check
      type: file_ops
      operation: validate
      files:
        - {path: work/data.json, must_be_file: true, min_size: 10}
        - {path: work/data.csv, must_exist: false}
    - {name: delete, type: file_ops, operation: delete, path: archive/data.csv}
)");
  PipelineExecutor::Options exec;
  exec.output_dir = out.path();
  ExecutionResult result = Run(pipeline, json::object(), {}, exec);
  ASSERT_TRUE(result.ok()) << result.status;
  EXPECT_EQ(json::parse(ReadFile(out / "work/data.json")),
            json::parse(R"([{"name":"ada","score":"9"},{"name":"bob","score":"7"}])"));
  EXPECT_EQ(result.results["list"]["files"], json::array({"data.json"}));
  EXPECT_EQ(result.results["check"]["status"], "all_valid");
  EXPECT_FALSE(std::filesystem::exists(out / "archive/data.csv"));
  EXPECT_TRUE(std::filesystem::exists(out / "in/data.csv"));

  // A templated path that leaves the directory, a symlink out of it, and no directory at all.
  ScratchDir outside;
  WriteFile(outside / "secret.txt", "secret");
  ASSERT_EQ(::symlink((outside / "secret.txt").c_str(), (out / "link.txt").c_str()), 0);
  const Pipeline escape = Load(R"(
workflow:
  name: escape
  steps:
    - {name: copy, type: file_ops, operation: copy, source: "{{inputs.from}}", destination: stolen.txt}
)");
  for (const std::string from : {"../secret.txt", "/etc/passwd", "link.txt"}) {
    ExecutionResult refused = Run(escape, {{"from", from}}, {}, exec);
    EXPECT_EQ(refused.status.code(), absl::StatusCode::kInvalidArgument) << from;
    EXPECT_FALSE(std::filesystem::exists(out / "stolen.txt")) << from;
  }
  ExecutionResult no_dir = Run(escape, {{"from", "in/data.csv"}});
  EXPECT_EQ(no_dir.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(no_dir.status.message(), HasSubstr("pipeline.output_dir"));
}

TEST_F(StepTypesTest, LoopAndStepLimitsAreExecutionErrors) {
  const std::string yaml = R"(
workflow:
  name: limits
  steps:
    - {name: data, type: set_variable, variables: {items: [1, 2, 3, 4]}}
    - name: outer
      type: for_loop
      iterator: i
      data_source: items
      steps:
        - name: inner
          type: for_loop
          iterator: j
          data_source: items
          steps:
            - {name: note, type: set_variable, variables: {last: "{{loop.j}}"}}
)";
  const Pipeline pipeline = Load(yaml);
  PipelineExecutor::Options small_loops;
  small_loops.max_loop_iterations = 3;
  ExecutionResult too_many_items = Run(pipeline, json::object(), {}, small_loops);
  EXPECT_EQ(too_many_items.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(too_many_items.status.message(),
              HasSubstr("data_source has 4 items; a loop runs at most 3 iterations"));

  // 1 + 1 + 4 * (1 + 4) = 22 steps; the inner loop's failure is not swallowed by the outer.
  PipelineExecutor::Options few_steps;
  few_steps.max_executed_steps = 20;
  ExecutionResult too_many_steps = Run(pipeline, json::object(), {}, few_steps);
  EXPECT_EQ(too_many_steps.status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(too_many_steps.status.message(), HasSubstr("more than 20 steps"));
  few_steps.max_executed_steps = 22;
  EXPECT_TRUE(Run(pipeline, json::object(), {}, few_steps).ok());
}

TEST_F(StepTypesTest, LoadLimitsAreInvalidArgument) {
  LoadOptions shallow = Options();
  shallow.max_nesting_depth = 1;
  const std::string nested = R"(
workflow:
  name: deep
  steps:
    - name: a
      type: while_loop
      condition: "false"
      steps:
        - name: b
          type: while_loop
          condition: "false"
          steps: [{name: c, type: set_variable, variables: {x: 1}}]
)";
  absl::Status deep = LoadError(nested, shallow);
  EXPECT_EQ(deep.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(deep.message(), HasSubstr("line 9, column 11: step \"b\": nesting depth 2 exceeds "
                                        "the limit of 1"));

  LoadOptions few = Options();
  few.max_steps = 2;
  EXPECT_THAT(LoadError(nested, few).message(), HasSubstr("the limit is 2"));

  const std::string many = absl::StrReplaceAll(
      nested, {{"condition: \"false\"\n      steps",
                "condition: \"false\"\n      max_iterations: 5000\n      steps"}});
  absl::Status iterations = LoadError(many);
  EXPECT_THAT(iterations.message(),
              HasSubstr("step \"a\": max_iterations must be an integer from 1 to 1000"));

  absl::Status cycle = LoadError(
      "workflow:\n  name: c\n  steps:\n"
      "    - {name: start, type: pipeline, pipeline_file: pipelines/cycle_a.yaml}\n");
  EXPECT_EQ(cycle.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(cycle.message(),
              HasSubstr("circular pipeline_file reference: pipelines/cycle_a.yaml -> "
                        "pipelines/cycle_b.yaml -> pipelines/cycle_a.yaml"));
}

TEST_F(StepTypesTest, BadShapesNameTheStepFieldAndLine) {
  struct Case {
    std::string step;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"{name: s, type: for_loop, data_source: x, steps: [{name: a, type: set_variable, "
       "variables: {}}]}",
       "step \"s\": for_loop needs a `iterator` string"},
      {"{name: s, type: for_loop, iterator: i, steps: [{name: a, type: set_variable, variables: "
       "{}}]}",
       "step \"s\": for_loop needs a `data_source` string"},
      {"{name: s, type: for_loop, iterator: i, data_source: x, steps: []}",
       "step \"s\": for_loop needs a non-empty `steps` list"},
      {"{name: s, type: while_loop, steps: [{name: a, type: set_variable, variables: {}}]}",
       "step \"s\": while_loop needs a `condition`"},
      {"{name: s, type: while_loop, condition: x, max_iterations: 0, steps: [{name: a, type: "
       "set_variable, variables: {}}]}",
       "max_iterations must be an integer from 1 to 1000"},
      {"{name: s, type: for_loop, iterator: i, data_source: x, steps: [{name: a, type: nope}]}",
       "step \"a\": unknown step type \"nope\""},
      {"{name: s, type: pipeline}", "No pipeline source specified"},
      {"{name: s, type: pipeline, pipeline_ref: x}", "pipeline_ref is not supported"},
      {"{name: s, type: pipeline, pipeline_file: ../x.yaml}",
       "pipeline_file: path \"../x.yaml\": must not contain \"..\""},
      {"{name: s, type: pipeline, pipeline_file: /etc/x.yaml}", "pipeline_file: path"},
      {"{name: s, type: pipeline, pipeline_file: \"{{inputs.f}}\"}",
       "pipeline_file must be a literal path"},
      {"{name: s, type: pipeline, pipeline_file: pipelines/missing.yaml}", "no such file"},
      {"{name: s, type: pipeline, pipeline: {steps: []}}", "at least one step"},
      {"{name: s, type: pipeline, pipeline: {steps: [{name: a, type: set_variable, variables: "
       "{}}]}, outputs: [{as: x}]}",
       "an output must be a step name or {path: a.b, as: name}"},
      {"{name: s, type: set_variable, variable: x}",
       "set_variable with `variable` needs a `value`"},
      {"{name: s, type: set_variable, variable: x, value: 1, variables: {y: 2}}",
       "use either `variables` or `variable`/`value`"},
      {"{name: s, type: data_transform, operations: []}",
       "data_transform needs a `input_source` string"},
      {"{name: s, type: data_transform, input_source: x, operations: [{operation: pivot}]}",
       "operations[0]: unknown operation \"pivot\""},
      {"{name: s, type: data_transform, input_source: x, operations: [{operation: aggregate, "
       "function: median}]}",
       "unknown aggregate function \"median\""},
      {"{name: s, type: data_transform, input_source: x, operations: [{operation: join, "
       "join_key: id}]}",
       "operations[0]: join needs `right_source`"},
      {"{name: s, type: file_ops, operation: shred, path: x}",
       "unsupported file_ops operation \"shred\""},
      {"{name: s, type: file_ops, operation: copy, source: ../etc/passwd, destination: x}",
       "source: path \"../etc/passwd\": must not contain \"..\""},
      {"{name: s, type: file_ops, operation: delete}", "file_ops delete needs a `path` path"},
      {"{name: s, type: file_ops, operation: convert, source: a, destination: b, format: "
       "xml_to_json}",
       "unsupported format \"xml_to_json\""},
      {"{name: s, type: claude_session, conversation: [{role: assistant, content: hi}], prompt: "
       "[{type: static, content: x}]}",
       "conversation[0].role must be \"user\""},
      {"{name: s, type: claude_session, conversation: [{role: user, content: hi}], prompt: "
       "[{type: static, content: x}]}",
       "conversation must end with an assistant turn"},
      {"{name: s, type: gemini_instructor, response_schema: [1], prompt: [{type: static, "
       "content: x}]}",
       "response_schema must be a JSON schema mapping"},
      {"{name: s, type: test_echo, value: x}", "step type \"test_echo\" is not supported"},
  };
  for (const Case& c : cases) {
    const std::string yaml = "workflow:\n  name: bad\n  steps:\n    - " + c.step + "\n";
    absl::Status status = LoadError(yaml);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.step;
    EXPECT_THAT(status.message(), HasSubstr(c.expected)) << c.step;
    EXPECT_THAT(status.message(), HasSubstr("line 4")) << c.step;
  }
  // Without a prompts directory, pipeline files cannot be read.
  absl::Status no_dir = LoadError(
      "workflow:\n  name: c\n  steps:\n"
      "    - {name: s, type: pipeline, pipeline_file: pipelines/review_child.yaml}\n",
      LoadOptions{});
  EXPECT_THAT(no_dir.message(), HasSubstr("pipeline_file needs the server's pipeline.prompts_dir"));
}

}  // namespace
}  // namespace elexirion::pipeline
