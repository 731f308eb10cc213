// Optimizable parameters, the documented program prompt format, and the optimized-YAML
// round trip (export + reload without a program == original with the program).
#include "server/pipeline/program.h"

#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/pipeline/executor.h"
#include "server/pipeline/loader.h"
#include "server/pipeline/optimized_yaml.h"
#include "tests/pipeline/scripted_llm_client.h"
#include "tests/pipeline/test_util.h"

namespace elexirion::pipeline {
namespace {

using json = nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::ReadFile;
using testing::ScriptedLlmClient;
using testing::TestData;

Pipeline Load(const std::string& file) {
  auto p = LoadPipeline(ReadFile(TestData(file)));
  EXPECT_TRUE(p.ok()) << p.status();
  return std::move(*p);
}

ProgramState CodeAnalysisProgram() {
  ProgramState program;
  StepProgram& p = program.steps["analyze_code"];
  p.instruction = "Find security bugs. Mode: {{inputs.analysis_type}}";
  p.demos.push_back({{"code", "eval(input())"},
                     {"analysis_type", "security"},
                     {"findings", {"arbitrary code execution"}},
                     {"recommendations", "Use ast.literal_eval"},
                     {"severity", "high"},
                     {"augmented", true}});
  p.demos.push_back({{"code", "x = 1"}, {"severity", "none"}, {"findings", nullptr}});
  return program;
}

constexpr char kProgramContent[] =
    "Find security bugs. Mode: {{inputs.analysis_type}}\n"
    "\n"
    "Example 1:\n"
    "[[ ## code ## ]]\n"
    "eval(input())\n"
    "\n"
    "[[ ## analysis_type ## ]]\n"
    "security\n"
    "\n"
    "[[ ## findings ## ]]\n"
    "[\n"
    "  \"arbitrary code execution\"\n"
    "]\n"
    "\n"
    "[[ ## recommendations ## ]]\n"
    "Use ast.literal_eval\n"
    "\n"
    "[[ ## severity ## ]]\n"
    "high\n"
    "\n"
    "Example 2:\n"
    "[[ ## code ## ]]\n"
    "x = 1\n"
    "\n"
    "[[ ## severity ## ]]\n"
    "none\n";

class ProgramExecutionTest : public ::testing::Test {
 protected:
  ProgramExecutionTest() {
    PipelineExecutor::Options options;
    options.client = &client_;
    options.prompts_dir = TestData("prompts");
    executor_ = std::move(*PipelineExecutor::Create(options));
  }

  // Rendered prompts of every step.
  std::vector<std::string> Prompts(const Pipeline& pipeline, const json& inputs,
                                   const ProgramState* program) {
    ExecuteOptions options;
    options.program = program;
    options.include_prompts = true;
    auto result = executor_->Execute(pipeline, inputs, options);
    EXPECT_TRUE(result.ok()) << result.status();
    EXPECT_TRUE(result->ok()) << result->status;
    std::vector<std::string> prompts;
    for (const StepResult& step : result->steps) prompts.push_back(step.prompt);
    return prompts;
  }

  ScriptedLlmClient client_;
  std::unique_ptr<PipelineExecutor> executor_;
};

TEST(ProgramTest, ListsOptimizableSteps) {
  const Pipeline fix_bug = Load("fix_bug.yaml");
  const auto steps = ListOptimizableSteps(fix_bug);
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(steps[0].name, "analyze_error");
  EXPECT_EQ(steps[0].type, "gemini");
  EXPECT_EQ(steps[0].signature_text, "input_data -> pipeline_output");
  EXPECT_EQ(steps[0].instruction,
            "Analyze this error: the root cause, the file involved, the severity.");
  EXPECT_EQ(steps[2].instruction,
            "Suggest a fix. Error analysis:\nRelevant code:\n"
            "Explain the fix, the changes, the tests and any side effects.");
  EXPECT_EQ(steps[2].static_part_count, 3u);

  const Pipeline analysis = Load("code_analysis.yaml");
  const auto a = ListOptimizableSteps(analysis);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_THAT(a[0].signature.OutputNames(), ElementsAre("findings", "recommendations", "severity"));
  // "{{inputs.code}}" alone is an input slot, not instruction text.
  EXPECT_EQ(a[0].instruction,
            "Analyze the following code. Report concrete findings, recommendations and an "
            "overall severity.\nAnalysis type: {{inputs.analysis_type}}");
  EXPECT_EQ(a[0].static_part_count, 1u);

  auto batch = LoadPipeline(
      "workflow:\n  name: b\n  steps:\n"
      "    - {name: v, type: set_variable, variables: {a: 1}}\n"
      "    - {name: b, type: claude_batch, tasks: [{prompt: x}]}\n"
      "    - {name: c, type: claude_robust, prompt: [{type: previous_response, step: v}]}\n");
  ASSERT_TRUE(batch.ok()) << batch.status();
  const auto only = ListOptimizableSteps(*batch);
  ASSERT_EQ(only.size(), 1u);
  EXPECT_EQ(only[0].name, "c");
  EXPECT_EQ(only[0].instruction, "");
}

TEST(ProgramTest, RendersTheDocumentedFormat) {
  const Pipeline analysis = Load("code_analysis.yaml");
  const ProgramState program = CodeAnalysisProgram();
  auto content = RenderProgramContent(analysis.steps[0], program.steps.at("analyze_code"));
  ASSERT_TRUE(content.ok()) << content.status();
  EXPECT_EQ(*content, kProgramContent);

  // Demos without an instruction keep the original instruction text.
  StepProgram demos_only;
  demos_only.demos.push_back({{"input_data", "in"}, {"pipeline_output", {{"k", 1}}}});
  const Pipeline fix_bug = Load("fix_bug.yaml");
  auto with_demos = RenderProgramContent(fix_bug.steps[0], demos_only);
  ASSERT_TRUE(with_demos.ok());
  EXPECT_EQ(*with_demos,
            "Analyze this error: the root cause, the file involved, the severity.\n\n"
            "Example 1:\n[[ ## input_data ## ]]\nin\n\n[[ ## pipeline_output ## ]]\n"
            "{\n  \"k\": 1\n}\n");
  // An instruction without demos is the instruction alone.
  StepProgram instruction_only;
  instruction_only.instruction = "Be terse.";
  EXPECT_EQ(*RenderProgramContent(fix_bug.steps[0], instruction_only), "Be terse.");
}

TEST(ProgramTest, ApplyProgramCollapsesStaticPartsInPlace) {
  const Pipeline fix_bug = Load("fix_bug.yaml");
  StepProgram program;
  program.instruction = "NEW";
  auto parts = ApplyProgram(fix_bug.steps[2], program);
  ASSERT_TRUE(parts.ok());
  ASSERT_EQ(parts->size(), 3u);
  EXPECT_EQ((*parts)[0].kind, PromptPartKind::kStatic);
  EXPECT_EQ((*parts)[0].content, "NEW");
  EXPECT_EQ((*parts)[1].step, "analyze_error");
  EXPECT_EQ((*parts)[2].step, "find_code");
  // A step without instruction parts gets the new part at the front.
  auto chained = LoadPipeline(
      "workflow:\n  name: c\n  steps:\n"
      "    - {name: a, type: claude, prompt: [{type: static, content: x}]}\n"
      "    - {name: b, type: claude, prompt: [{type: previous_response, step: a}]}\n");
  ASSERT_TRUE(chained.ok());
  auto front = ApplyProgram(chained->steps[1], program);
  ASSERT_TRUE(front.ok());
  ASSERT_EQ(front->size(), 2u);
  EXPECT_EQ((*front)[0].content, "NEW");
  // An empty program changes nothing.
  auto same = ApplyProgram(fix_bug.steps[2], StepProgram{});
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->size(), 5u);
}

TEST(ProgramTest, ValidatesPrograms) {
  const Pipeline analysis = Load("code_analysis.yaml");
  ProgramState bad_demo;
  bad_demo.steps["analyze_code"].demos.push_back(json::array({1}));
  EXPECT_THAT(std::string(ValidateProgram(analysis, bad_demo).message()),
              HasSubstr("demo 1 is not an object"));
  ProgramState no_fields;
  no_fields.steps["analyze_code"].demos.push_back({{"question", "?"}});
  EXPECT_THAT(std::string(ValidateProgram(analysis, no_fields).message()),
              HasSubstr("has none of the signature fields code, analysis_type, findings"));
  ProgramState unknown;
  unknown.steps["nope"].instruction = "x";
  EXPECT_EQ(ValidateProgram(analysis, unknown).code(), absl::StatusCode::kInvalidArgument);
  auto with_set = LoadPipeline(
      "workflow:\n  name: s\n  steps:\n"
      "    - {name: v, type: set_variable, variables: {a: 1}}\n");
  ASSERT_TRUE(with_set.ok());
  ProgramState on_set;
  on_set.steps["v"].instruction = "x";
  EXPECT_THAT(std::string(ValidateProgram(*with_set, on_set).message()),
              HasSubstr("has no optimizable prompt"));
}

TEST(ProgramTest, JsonRoundTrip) {
  const ProgramState program = CodeAnalysisProgram();
  const json j = ProgramStateToJson(program);
  auto back = ProgramStateFromJson(j);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(ProgramStateToJson(*back), j);
  EXPECT_EQ(back->steps.at("analyze_code").instruction,
            program.steps.at("analyze_code").instruction);
  EXPECT_FALSE(ProgramStateFromJson(json{{"steps", {{"a", {{"demos", 3}}}}}}).ok());
  EXPECT_FALSE(ProgramStateFromJson(json::array()).ok());
}

TEST_F(ProgramExecutionTest, WithoutAProgramThePromptIsPipelineExs) {
  const Pipeline analysis = Load("code_analysis.yaml");
  const json inputs = {{"code", "print(1)"}, {"analysis_type", "style"}};
  const auto plain = Prompts(analysis, inputs, nullptr);
  const std::string expected =
      "Analyze the following code. Report concrete findings, recommendations and an overall "
      "severity.\nAnalysis type: style\nprint(1)";
  EXPECT_EQ(plain, std::vector<std::string>{expected});
  ProgramState empty;
  empty.steps["analyze_code"];  // present but empty: unchanged
  EXPECT_EQ(Prompts(analysis, inputs, &empty), std::vector<std::string>{expected});
}

TEST_F(ProgramExecutionTest, ProgramIsRenderedIntoThePrompt) {
  const Pipeline analysis = Load("code_analysis.yaml");
  const ProgramState program = CodeAnalysisProgram();
  const auto prompts =
      Prompts(analysis, {{"code", "print(1)"}, {"analysis_type", "style"}}, &program);
  std::string expected = kProgramContent;
  expected.replace(expected.find("{{inputs.analysis_type}}"), 24, "style");
  EXPECT_EQ(prompts, std::vector<std::string>{expected + "\nprint(1)"});
}

TEST_F(ProgramExecutionTest, OptimizedYamlRoundTrip) {
  for (const char* file :
       {"code_analysis.yaml", "fix_bug.yaml", "refactoring.yaml", "claude_smart_example.yaml"}) {
    SCOPED_TRACE(file);
    const Pipeline original = Load(file);
    ProgramState program;
    for (const OptimizableStep& step : ListOptimizableSteps(original)) {
      StepProgram& p = program.steps[step.name];
      p.instruction =
          "Learned for " + step.name + ":\n  keep {{inputs.analysis_type}} \"quoted\" #x";
      json demo = json::object();
      for (const std::string& field : step.signature.FieldNames()) {
        demo[field] = field + " value: with colon\n  second line\ttab";
      }
      p.demos.push_back(demo);
      p.demos.push_back({{step.signature.FieldNames()[0], json{{"nested", {1, 2.5, true}}}}});
    }
    auto yaml = RenderOptimizedYaml(original, program);
    ASSERT_TRUE(yaml.ok()) << yaml.status();
    auto reloaded = LoadPipeline(*yaml);
    ASSERT_TRUE(reloaded.ok()) << reloaded.status() << "\n" << *yaml;
    EXPECT_EQ(reloaded->document["workflow"]["name"], original.document["workflow"]["name"]);

    const json inputs = {{"code", "x = 1"}, {"analysis_type", "security"}};
    const auto with_program = Prompts(original, inputs, &program);
    const auto exported = Prompts(*reloaded, inputs, nullptr);
    EXPECT_EQ(with_program, exported) << *yaml;
    EXPECT_NE(with_program, Prompts(original, inputs, nullptr));
  }
}

TEST(OptimizedYamlTest, NameSpellingIsNormalizedToStep) {
  const Pipeline refactoring = Load("refactoring.yaml");
  auto yaml = RenderOptimizedYaml(refactoring, ProgramState{});
  ASSERT_TRUE(yaml.ok());
  EXPECT_THAT(*yaml, HasSubstr("type: previous_response\n          step: analyze_for_refactoring"));
  EXPECT_THAT(*yaml, ::testing::Not(HasSubstr("          name: analyze_for_refactoring")));
}

TEST(OptimizedYamlTest, EmittedStringsReloadExactly) {
  std::mt19937 rng(42);
  const std::vector<std::string> alphabet = {"a",
                                             "b",
                                             " ",
                                             ":",
                                             "#",
                                             "-",
                                             "?",
                                             "{",
                                             "}",
                                             "[",
                                             "]",
                                             "\"",
                                             "'",
                                             "\\",
                                             "|",
                                             ">",
                                             "\n",
                                             "\t",
                                             "\r",
                                             "\x01",
                                             "\x7f",
                                             "\xc3\xa9",
                                             "\xe2\x82\xac",
                                             "\xe2\x80\xa8",
                                             "\xc2\x85",
                                             "\xef\xbb\xbf",
                                             "0",
                                             "."};
  nlohmann::ordered_json doc = nlohmann::ordered_json::object();
  std::vector<std::string> values = {"",
                                     " lead",
                                     "trail ",
                                     "\n",
                                     "\n\nx",
                                     "x\n\n",
                                     "  indented\nx",
                                     "true",
                                     "123",
                                     "1e5",
                                     "~",
                                     "null",
                                     "- item",
                                     "key: v",
                                     "a #c",
                                     "{{inputs.x}}",
                                     "line1\nline2\n",
                                     "  \n x",
                                     "x\n  \ny"};
  for (int i = 0; i < 400; ++i) {
    std::string s;
    const int len = static_cast<int>(rng() % 24);
    for (int j = 0; j < len; ++j) s += alphabet[rng() % alphabet.size()];
    values.push_back(s);
  }
  for (size_t i = 0; i < values.size(); ++i) doc["k" + std::to_string(i)] = values[i];
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const nlohmann::ordered_json& v :
       {nlohmann::ordered_json("a\nb"), nlohmann::ordered_json(1), nlohmann::ordered_json(2.5),
        nlohmann::ordered_json(1e20), nlohmann::ordered_json(), nlohmann::ordered_json(false),
        nlohmann::ordered_json::object(), nlohmann::ordered_json::array()}) {
    list.push_back(v);
  }
  doc["list"] = list;
  doc[std::string(1500, 'k') + ": long key"] = "v";
  doc["long_plain"] = std::string(70000, 'p');
  doc[std::string(1200, 'q')]["nested"] = nlohmann::ordered_json::array({1, "two"});
  nlohmann::ordered_json inner = nlohmann::ordered_json::object();
  inner["y"] = "z\n";
  doc["nested"]["deep"]["x"] = nlohmann::ordered_json::array();
  doc["nested"]["deep"]["x"].push_back(inner);
  const std::string yaml = EmitYaml(doc);
  auto tree = ParseYaml(yaml);
  ASSERT_TRUE(tree.ok()) << tree.status() << "\n" << yaml;
  const nlohmann::ordered_json back = YamlToJson(**tree);
  EXPECT_EQ(back, doc) << yaml;
}

}  // namespace
}  // namespace elexirion::pipeline
