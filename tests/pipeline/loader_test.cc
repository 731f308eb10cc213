#include "server/pipeline/loader.h"

#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/pipeline/test_util.h"

namespace elexirion::pipeline {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::ReadFile;
using testing::ScratchDir;
using testing::TestData;
using testing::WriteFile;

absl::StatusOr<Pipeline> LoadFile(const std::string& name, const LoadOptions& options = {}) {
  return LoadPipeline(ReadFile(TestData(name)), options);
}

// One-step workflow around a step body (indented by 6).
std::string OneStep(const std::string& step_body) {
  return "workflow:\n  name: t\n  steps:\n    - name: analyze\n" + step_body;
}

void ExpectInvalid(const std::string& yaml, const std::string& fragment,
                   const LoadOptions& options = {}) {
  auto p = LoadPipeline(yaml, options);
  ASSERT_FALSE(p.ok()) << yaml;
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << p.status();
  EXPECT_THAT(std::string(p.status().message()), HasSubstr(fragment)) << yaml;
}

TEST(LoaderTest, LoadsFixBugWorkflow) {
  auto p = LoadFile("fix_bug.yaml");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->name, "fix_bug");
  ASSERT_EQ(p->steps.size(), 3u);
  const Step& analyze = p->steps[0];
  EXPECT_EQ(analyze.kind, StepKind::kGemini);
  EXPECT_EQ(analyze.model, "gemini-2.5-flash");
  ASSERT_EQ(analyze.prompt.size(), 2u);
  EXPECT_EQ(analyze.prompt[0].kind, PromptPartKind::kFile);
  EXPECT_EQ(analyze.prompt[0].path, "logs/error.log");
  EXPECT_THAT(analyze.ignored_options, ElementsAre("token_budget.top_k"));
  const Step& find = p->steps[1];
  EXPECT_EQ(find.kind, StepKind::kClaude);
  EXPECT_THAT(find.ignored_options,
              ElementsAre("claude_options.allowed_tools", "claude_options.max_turns"));
  const Step& fix = p->steps[2];
  ASSERT_EQ(fix.prompt.size(), 5u);
  EXPECT_EQ(fix.prompt[1].kind, PromptPartKind::kPreviousResponse);
  EXPECT_EQ(fix.prompt[1].step, "analyze_error");
  EXPECT_EQ(fix.prompt[1].extract, "text");
  EXPECT_FALSE(fix.prompt[3].extract.has_value());
  EXPECT_EQ(fix.output_to_file, "fix_suggestion.md");
  EXPECT_EQ(fix.signature_text, "input_data -> pipeline_output");
  EXPECT_EQ(fix.location.line, 31);
}

TEST(LoaderTest, LoadsDesignDocumentTemplates) {
  auto analysis = LoadFile("code_analysis.yaml");
  ASSERT_TRUE(analysis.ok()) << analysis.status();
  const Step& step = analysis->steps[0];
  EXPECT_EQ(step.kind, StepKind::kClaudeSmart);
  EXPECT_EQ(step.preset, "analysis");
  EXPECT_THAT(step.signature.InputNames(), ElementsAre("code", "analysis_type"));
  EXPECT_THAT(step.signature.OutputNames(), ElementsAre("findings", "recommendations", "severity"));
  // The analysis preset's Claude Code options are reported as ignored.
  EXPECT_THAT(step.ignored_options, ::testing::Contains("claude_options.allowed_tools"));
  EXPECT_THAT(step.ignored_options, ::testing::Contains("claude_options.max_turns"));
  EXPECT_THAT(step.ignored_options, ::testing::Not(::testing::Contains("claude_options.model")));

  // The refactoring template writes previous_response with `name:`; accepted as `step:`.
  auto refactoring = LoadFile("refactoring.yaml");
  ASSERT_TRUE(refactoring.ok()) << refactoring.status();
  EXPECT_EQ(refactoring->steps[1].prompt[1].step, "analyze_for_refactoring");
}

TEST(LoaderTest, LoadsPresetsAndDefaults) {
  auto p = LoadFile("claude_smart_example.yaml");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->default_preset, "development");
  EXPECT_EQ(EffectivePreset(*p, p->steps[1]), "analysis");
  EXPECT_EQ(EffectivePreset(*p, p->steps[2]), "production");
  EXPECT_EQ(EffectivePreset(*p, p->steps[3]), "development");
}

TEST(LoaderTest, KeepsDocumentAndUnknownKeys) {
  auto p = LoadPipeline(
      "version: 2\nworkflow:\n  name: w\n  checkpoint_enabled: true\n  hooks: {x: 1}\n"
      "  global_vars: {team: core}\n  steps:\n    - name: s\n      type: claude\n"
      "      role: brain\n      prompt: [{type: static, content: hi}]\n");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->global_vars["team"], "core");
  EXPECT_EQ(p->document["version"], 2);
  EXPECT_TRUE(p->document["workflow"]["checkpoint_enabled"].get<bool>());
}

TEST(LoaderTest, UnknownStepType) {
  ExpectInvalid(OneStep("      type: foo\n      prompt: [{type: static, content: x}]\n"),
                "line 5, column 13: step \"analyze\": unknown step type \"foo\"");
}

TEST(LoaderTest, TestEchoIsRefusedByName) {
  // test_echo exists only in pipeline_ex's test environment; the other pipeline_ex types load
  // (tests/pipeline/step_types_test.cc).
  ExpectInvalid(OneStep("      type: test_echo\n      value: x\n"),
                "step \"analyze\": step type \"test_echo\" is not supported");
}

TEST(LoaderTest, MissingTypeAndName) {
  ExpectInvalid(OneStep("      prompt: [{type: static, content: x}]\n"),
                "step \"analyze\": missing type");
  ExpectInvalid("workflow:\n  name: t\n  steps:\n    - type: claude\n",
                "line 4, column 7: step 1 missing required 'name'");
}

TEST(LoaderTest, MissingOrMalformedPrompt) {
  ExpectInvalid(OneStep("      type: claude\n"), "step \"analyze\": missing prompt");
  ExpectInvalid(OneStep("      type: claude\n      prompt: \"say hi\"\n"),
                "prompt must be a list of prompt parts");
  ExpectInvalid(OneStep("      type: gemini\n      prompt: []\n"), "prompt is empty");
  ExpectInvalid(OneStep("      type: claude\n      prompt: [{type: static}]\n"),
                "static prompt part without content");
  ExpectInvalid(OneStep("      type: claude\n      prompt: [{content: x}]\n"),
                "prompt part without type");
  ExpectInvalid(OneStep("      type: claude\n      prompt: [{type: shell, cmd: ls}]\n"),
                "prompt part with invalid type \"shell\"");
  ExpectInvalid(OneStep("      type: claude\n      prompt: [{type: session_context}]\n"),
                "session_context prompt part missing 'session_id'");
  ExpectInvalid(OneStep("      type: claude\n      prompt: [{type: static, content: [a]}]\n"),
                "content must be text");
}

TEST(LoaderTest, PreviousResponseToUnknownOrLaterStep) {
  const std::string base =
      "workflow:\n  name: t\n  steps:\n"
      "    - name: first\n      type: claude\n      prompt:\n"
      "        - {type: previous_response, step: REF}\n"
      "    - name: second\n      type: claude\n      prompt: [{type: static, content: x}]\n";
  auto with = [&](const std::string& ref) {
    std::string yaml = base;
    yaml.replace(yaml.find("REF"), 3, ref);
    return yaml;
  };
  ExpectInvalid(with("nope"),
                "line 7, column 43: step \"first\": previous_response refers to unknown step "
                "\"nope\"");
  ExpectInvalid(with("second"), "previous_response refers to step \"second\", which runs later");
  ExpectInvalid(with("first"), "previous_response refers to step \"first\", which runs later");
  // The design document's `name:` spelling gets the same check.
  std::string by_name = with("x");
  by_name.replace(by_name.find("step: x"), 7, "name: nope");
  ExpectInvalid(by_name, "refers to unknown step \"nope\"");
}

TEST(LoaderTest, DuplicateAndEmptySteps) {
  ExpectInvalid(
      "workflow:\n  name: t\n  steps:\n"
      "    - {name: a, type: claude, prompt: [{type: static, content: x}]}\n"
      "    - {name: a, type: claude, prompt: [{type: static, content: y}]}\n",
      "line 5, column 14: step \"a\": duplicate step name (first defined at line 4, column 14)");
  ExpectInvalid("workflow:\n  name: t\n  steps: []\n", "at least one step");
  ExpectInvalid("workflow:\n  name: t\n", "missing required 'steps'");
  ExpectInvalid("workflow:\n  steps: []\n", "missing required 'name'");
  ExpectInvalid("name: t\n", "missing required 'workflow'");
  ExpectInvalid("- a\n- b\n", "must be a mapping with a 'workflow' key");
  ExpectInvalid("", "must be a mapping with a 'workflow' key");
}

TEST(LoaderTest, FilePathSyntaxIsCheckedAlways) {
  ExpectInvalid(OneStep("      type: claude\n      prompt: [{type: file, path: ../secret.txt}]\n"),
                "step \"analyze\": file prompt part: path \"../secret.txt\": must not contain "
                "\"..\"");
  ExpectInvalid(OneStep("      type: claude\n      prompt: [{type: file, path: a/../../b}]\n"),
                "must not contain \"..\"");
  ExpectInvalid(OneStep("      type: claude\n      prompt: [{type: file, path: /etc/passwd}]\n"),
                "must be relative to the prompts directory");
  ExpectInvalid(OneStep("      type: claude\n      prompt: [{type: file, path: \"a\\0b\"}]\n"),
                "contains a NUL byte");
  ExpectInvalid(OneStep("      type: claude\n      prompt: [{type: file, path: \"\"}]\n"),
                "path \"\": is empty");
  // Templated paths are checked when they are rendered.
  EXPECT_TRUE(LoadPipeline(OneStep("      type: claude\n      prompt: [{type: file, path: "
                                   "\"{{inputs.f}}\"}]\n"))
                  .ok());
}

TEST(LoaderTest, FilesAreCheckedAgainstThePromptsDirectory) {
  ScratchDir root;
  WriteFile(root / "prompts/ok.txt", "fine");
  WriteFile(root / "outside.txt", "secret");
  WriteFile(root / "prompts/big.txt", std::string(2000, 'x'));
  ASSERT_EQ(symlink((root / "outside.txt").c_str(), (root / "prompts/escape.txt").c_str()), 0);
  ASSERT_EQ(symlink("../outside.txt", (root / "prompts/relative_escape.txt").c_str()), 0);
  ASSERT_EQ(symlink("ok.txt", (root / "prompts/inside_link.txt").c_str()), 0);
  ASSERT_EQ(mkfifo((root / "prompts/pipe").c_str(), 0600), 0);
  ASSERT_EQ(symlink("/dev/zero", (root / "prompts/zero").c_str()), 0);
  std::filesystem::create_directories(root / "prompts/dir");

  LoadOptions options;
  options.prompts_dir = root / "prompts";
  options.max_prompt_file_bytes = 1000;
  auto file_step = [](const std::string& path) {
    return OneStep("      type: claude\n      prompt: [{type: file, path: \"" + path + "\"}]\n");
  };
  EXPECT_TRUE(LoadPipeline(file_step("ok.txt"), options).ok());
  EXPECT_TRUE(LoadPipeline(file_step("inside_link.txt"), options).ok());
  ExpectInvalid(file_step("escape.txt"), "resolves outside the prompts directory", options);
  ExpectInvalid(file_step("relative_escape.txt"), "resolves outside the prompts directory",
                options);
  ExpectInvalid(file_step("pipe"), "is not a regular file", options);
  ExpectInvalid(file_step("zero"), "resolves outside the prompts directory", options);
  ExpectInvalid(file_step("dir"), "is not a regular file", options);
  ExpectInvalid(file_step("big.txt"), "the limit is 1000", options);
  auto missing = LoadPipeline(file_step("missing.txt"), options);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("no such file"));
}

TEST(LoaderTest, PresetsAndSignaturesAreValidated) {
  ExpectInvalid(OneStep("      type: claude_smart\n      preset: turbo\n"
                        "      prompt: [{type: static, content: x}]\n"),
                "step \"analyze\": unknown preset \"turbo\"");
  ExpectInvalid(
      "workflow:\n  name: t\n  defaults: {claude_preset: fast}\n  steps:\n"
      "    - {name: a, type: claude, prompt: [{type: static, content: x}]}\n",
      "unknown defaults.claude_preset \"fast\"");
  ExpectInvalid(OneStep("      type: claude\n      signature: \"a b -> c\"\n"
                        "      prompt: [{type: static, content: x}]\n"),
                "step \"analyze\": invalid signature: signature \"a b -> c\"");
}

TEST(LoaderTest, TypeSpecificValidation) {
  ExpectInvalid(OneStep("      type: gemini\n      functions: [lookup]\n"
                        "      prompt: [{type: static, content: x}]\n"),
                "references undefined function \"lookup\"");
  ExpectInvalid(OneStep("      type: parallel_claude\n"), "missing required 'parallel_tasks'");
  ExpectInvalid(OneStep("      type: claude_batch\n"), "must have either 'prompt' or 'tasks'");
  ExpectInvalid(OneStep("      type: set_variable\n"), "needs a `variables` mapping");
  ExpectInvalid(
      "workflow:\n  name: t\n  steps:\n"
      "    - {name: a, type: claude, prompt: [{type: static, content: x}]}\n"
      "    - name: b\n      type: claude_batch\n      tasks:\n"
      "        - prompt: [{type: previous_response, step: a}]\n",
      "previous_response is not available inside claude_batch tasks");
}

TEST(LoaderTest, HostileDocumentsFailCleanly) {
  std::string bomb = "workflow:\n  name: t\n  x0: &x0 [a, a, a, a, a, a, a, a, a, a]\n";
  for (int i = 1; i < 8; ++i) {
    absl::StrAppend(&bomb, "  x", i, ": &x", i, " [");
    for (int j = 0; j < 10; ++j) absl::StrAppend(&bomb, j ? ", " : "", "*x", i - 1);
    bomb += "]\n";
  }
  ExpectInvalid(bomb, "node budget");
  ExpectInvalid("workflow: &w\n  name: t\n  self: *w\n", "alias cycle");
  ExpectInvalid(
      "workflow:\n  name: t\n  steps: " + std::string(10000, '[') + std::string(10000, ']') + "\n",
      "depth limit");
  std::string block = "workflow:\n  name: t\n  steps:\n    ";
  for (int i = 0; i < 10000; ++i) block += "- ";
  ExpectInvalid(block + "x\n", "depth limit");
  ExpectInvalid("workflow:\n  name: \"" + std::string(2 << 20, 'x') + "\"\n", "limit is");
  LoadOptions options;
  options.max_steps = 2;
  ExpectInvalid(
      "workflow:\n  name: t\n  steps:\n"
      "    - {name: a, type: claude, prompt: [{type: static, content: x}]}\n"
      "    - {name: b, type: claude, prompt: [{type: static, content: x}]}\n"
      "    - {name: c, type: claude, prompt: [{type: static, content: x}]}\n",
      "workflow has 3 steps; the limit is 2", options);
}

}  // namespace
}  // namespace elexirion::pipeline
