// The loaded form of a pipeline_ex workflow (see loader.h for the accepted YAML).
//
// Values are immutable after LoadPipeline() returns; a Pipeline may be shared by any number
// of concurrent executions.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nlohmann/json.hpp"
#include "server/pipeline/signature.h"
#include "server/pipeline/yaml_tree.h"

namespace elexirion::pipeline {

enum class StepKind {
  kClaude,
  kGemini,
  kClaudeSmart,
  kClaudeExtract,
  kClaudeRobust,
  kClaudeSession,
  kClaudeBatch,
  kParallelClaude,
  kSetVariable,
  kGeminiInstructor,  // one Gemini call with a JSON response schema
  kForLoop,           // sub-steps per item of data_source
  kWhileLoop,         // sub-steps while condition holds
  kNestedPipeline,    // type: pipeline (pipeline_file or inline pipeline)
  kDataTransform,     // filter/map/aggregate/join/group_by/sort over a result
  kFileOps,           // copy/move/delete/validate/list/convert under pipeline.output_dir
};

struct Pipeline;

enum class PromptPartKind {
  kStatic,            // {type: static, content}
  kFile,              // {type: file, path}: a file under the prompts directory
  kPreviousResponse,  // {type: previous_response, step | name, extract?, strict?}
  kSessionContext,    // renders "" as in pipeline_ex
  kClaudeContinue,    // renders "" as in pipeline_ex
};

struct PromptPart {
  PromptPartKind kind = PromptPartKind::kStatic;
  // kStatic: the content as written (normally a string; a YAML number or bool is kept typed
  // and rendered with Elixir's to_string). May hold {{templates}}.
  nlohmann::json content;
  // kFile: relative to the prompts directory; may hold {{templates}}.
  std::string path;
  // kPreviousResponse: the source step (from `step:` or the design document's `name:`).
  std::string step;
  std::optional<std::string> extract;  // dotted path into the source step's result
  bool strict = true;                  // a missing extract path fails the step
  // The part exactly as written (used by the optimized-YAML export).
  nlohmann::ordered_json source;
  SourceLocation location;
};

// One claude_batch task: prompt parts (or a file to analyse), run as one model call.
struct BatchTask {
  std::string task_id;
  std::vector<PromptPart> prompt;
  std::optional<std::string> file;
};

// One parallel_claude task: a claude call of its own.
struct ParallelTask {
  std::string id;
  nlohmann::json claude_options = nlohmann::json::object();
  std::vector<PromptPart> prompt;
};

// One prior turn of a claude_session `conversation:` (sent before the step's prompt).
struct ConversationTurn {
  std::string role;     // "user" or "assistant"
  std::string content;  // may hold {{templates}}
};

struct Step {
  std::string name;
  // Qualified name: the name for a top-level step, "<parent path>/<name>" for a step inside a
  // loop or a nested pipeline. Programs, predictors and StepResults use it.
  std::string path;
  // JSON pointer of the step's map inside its Pipeline's `document`
  // ("/workflow/steps/2/steps/0").
  std::string document_pointer;
  std::string type;  // as written ("claude_smart")
  StepKind kind = StepKind::kClaude;
  size_t index = 0;  // position in workflow.steps
  std::vector<PromptPart> prompt;
  nlohmann::json condition;  // null when absent; string, bool, list or and/or/not map
  nlohmann::json claude_options = nlohmann::json::object();
  std::string model;   // step-level `model:` (gemini), "" when absent
  std::string preset;  // step-level `preset:`, "" when absent
  std::optional<std::string> output_to_file;
  // DSPy signature: declared with `signature:` or the default "input_data -> pipeline_output".
  std::string signature_text;
  Signature signature;
  // True when the step asks for a JSON response (gemini `response_mime_type:
  // application/json`, claude_extract `extraction_config.format: json`, or `output_schema`).
  bool json_output = false;
  // Options accepted but without meaning for a Messages API call (Claude Code agent options,
  // Gemini function calling, ...), as "claude_options.allowed_tools". Sorted.
  std::vector<std::string> ignored_options;
  // The whole step map (type-specific settings: extraction_config, retry_config, variables).
  nlohmann::json config = nlohmann::json::object();
  std::vector<BatchTask> tasks;                // claude_batch
  std::vector<ParallelTask> parallel_tasks;    // parallel_claude
  std::vector<ConversationTurn> conversation;  // claude_session
  std::vector<Step> sub_steps;                 // for_loop, while_loop
  // type: pipeline: the child workflow, loaded with the parent (its steps' paths start with
  // this step's path). `child_file` is the pipeline_file it came from ("" when inline).
  std::shared_ptr<const Pipeline> child;
  std::string child_file;
  // gemini_instructor: the JSON schema sent as Gemini's responseSchema.
  nlohmann::json response_schema;
  SourceLocation location;

  // Steps whose prompt is one model call with an optimizable instruction.
  bool IsOptimizable() const;
};

struct Pipeline {
  std::string name;
  std::vector<Step> steps;
  std::string default_preset;  // workflow.defaults.claude_preset
  std::string output_dir;      // workflow.defaults.output_dir
  // workflow.global_vars; null when absent (then {{global_vars.x}} stays literal).
  nlohmann::json global_vars;
  // workflow.environment.mode (claude_smart's environment_aware preset detection).
  std::string environment_mode;
  // The whole document as parsed (aliases expanded, key order kept), for the export.
  nlohmann::ordered_json document;

  // A top-level step by name, or any step by qualified path ("loop/inner",
  // "nested/child_step").
  const Step* FindStep(std::string_view name) const;
  // Every step, nested ones included, in document order (a container before its children).
  std::vector<const Step*> AllSteps() const;
};

const char* StepKindName(StepKind kind);

// The preset an enhanced step (claude_smart/_extract/_robust/_session/_batch) runs with:
// its `preset:`, else defaults.claude_preset, else the type's default (claude_smart:
// development, or the environment's mode with environment_aware; claude_extract and
// claude_session: analysis; claude_robust: production; claude_batch: development).
std::string EffectivePreset(const Pipeline& pipeline, const Step& step);

}  // namespace elexirion::pipeline
