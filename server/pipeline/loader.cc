#include "server/pipeline/loader.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/pipeline/confined_dir.h"
#include "server/pipeline/presets.h"
#include "server/pipeline/signature.h"
#include "server/pipeline/strings.h"

namespace elexirion::pipeline {
namespace {

using json = nlohmann::json;

#define RETURN_IF_ERROR_(expr)         \
  do {                                 \
    absl::Status status_ = (expr);     \
    if (!status_.ok()) return status_; \
  } while (false)

absl::Status Error(const SourceLocation& location, absl::string_view message) {
  const std::string where = FormatLocation(location);
  if (where.empty()) return absl::InvalidArgumentError(message);
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", message));
}

// Types pipeline_ex dispatches that this engine does not run: test_echo exists only in
// pipeline_ex's test environment.
bool IsUnsupportedPipelineExType(absl::string_view type) { return type == "test_echo"; }

// The schema gemini_instructor asks for without `functions` (pipeline_ex's InstructorLite
// call: {text, analysis, summary}, text required).
json DefaultInstructorSchema() {
  return json{{"type", "object"},
              {"properties",
               {{"text", {{"type", "string"}, {"description", "The response text"}}},
                {"analysis", {{"type", "string"}, {"description", "Analysis or reasoning"}}},
                {"summary", {{"type", "string"}, {"description", "Brief summary"}}}}},
              {"required", {"text"}}};
}

// pipeline_ex writes paths relative to its working directory ("./pipelines/x.yaml").
std::string WithoutDotSlash(std::string path) {
  while (absl::StartsWith(path, "./")) path.erase(0, 2);
  return path;
}

// Shared by every workflow of one LoadPipeline call (the document and its pipeline files).
struct LoadState {
  const LoadOptions* options = nullptr;
  const ConfinedDirectory* prompts = nullptr;
  size_t total_steps = 0;
  std::vector<std::string> files;  // the pipeline_file chain being loaded, outermost first
};

// Where a list of steps sits.
struct StepScope {
  const Pipeline* pipeline = nullptr;  // the workflow the steps belong to
  const std::map<std::string, json>* gemini_functions = nullptr;  // name -> parameters
  std::string path_prefix;     // "" at a workflow's top level, "<loop path>/" inside a loop
  std::string pointer_prefix;  // JSON pointer of the steps list in the workflow's document
  int depth = 0;               // loops and nested pipelines around the list
};

absl::Status LoadStepList(const YamlNode& steps, const StepScope& scope,
                          std::map<std::string, size_t> earlier,
                          const std::set<std::string>* outer_names, LoadState* state,
                          std::vector<Step>* out);
absl::Status LoadWorkflow(const YamlNode& workflow, const std::string& default_name,
                          const std::string& path_prefix, const std::string& pointer_prefix,
                          int depth, LoadState* state, Pipeline* pipeline);

bool KindFor(absl::string_view type, StepKind* kind) {
  static const std::map<absl::string_view, StepKind> kKinds = {
      {"claude", StepKind::kClaude},
      {"gemini", StepKind::kGemini},
      {"claude_smart", StepKind::kClaudeSmart},
      {"claude_extract", StepKind::kClaudeExtract},
      {"claude_robust", StepKind::kClaudeRobust},
      {"claude_session", StepKind::kClaudeSession},
      {"claude_batch", StepKind::kClaudeBatch},
      {"parallel_claude", StepKind::kParallelClaude},
      {"set_variable", StepKind::kSetVariable},
      {"gemini_instructor", StepKind::kGeminiInstructor},
      {"for_loop", StepKind::kForLoop},
      {"while_loop", StepKind::kWhileLoop},
      {"pipeline", StepKind::kNestedPipeline},
      {"data_transform", StepKind::kDataTransform},
      {"file_ops", StepKind::kFileOps},
  };
  auto it = kKinds.find(type);
  if (it == kKinds.end()) return false;
  *kind = it->second;
  return true;
}

bool IsEnhanced(StepKind kind) {
  return kind == StepKind::kClaudeSmart || kind == StepKind::kClaudeExtract ||
         kind == StepKind::kClaudeRobust || kind == StepKind::kClaudeSession ||
         kind == StepKind::kClaudeBatch;
}

bool NeedsPrompt(StepKind kind) {
  return kind == StepKind::kClaude || kind == StepKind::kGemini || kind == StepKind::kClaudeSmart ||
         kind == StepKind::kClaudeExtract || kind == StepKind::kClaudeRobust ||
         kind == StepKind::kClaudeSession || kind == StepKind::kGeminiInstructor;
}

// The scalar text of a node, or nullopt for non-scalars.
std::optional<std::string> ScalarText(const YamlNode* node) {
  if (node == nullptr || !node->IsScalar()) return std::nullopt;
  return node->scalar;
}

// Loads one step of one document. Not thread safe: one per step, on the loading thread.
class StepLoader {
 public:
  StepLoader(LoadState* state, const StepScope& scope,
             const std::map<std::string, size_t>& earlier_steps)
      : options_(*state->options),
        pipeline_(*scope.pipeline),
        earlier_(earlier_steps),
        prompts_(state->prompts),
        gemini_functions_(*scope.gemini_functions),
        state_(state),
        scope_(scope) {}

  absl::Status Load(const YamlNode& node, Step* step) {
    step_ = step;
    const YamlNode* type_node = node.Find("type");
    auto type = ScalarText(type_node);
    if (!type) return Fail(node.location, "missing type");
    step->type = *type;
    if (!KindFor(step->type, &step->kind)) {
      if (IsUnsupportedPipelineExType(step->type)) {
        return Fail(type_node->location,
                    absl::StrCat("step type \"", step->type,
                                 "\" is not supported by this engine (it needs a runtime "
                                 "this service does not provide)"));
      }
      return Fail(type_node->location, absl::StrCat("unknown step type \"", step->type, "\""));
    }
    step->config = YamlToSortedJson(node);

    if (const YamlNode* n = node.Find("condition")) {
      step->condition = YamlToSortedJson(*n);
      if (!(step->condition.is_null() || step->condition.is_string() ||
            step->condition.is_boolean() || step->condition.is_array() ||
            step->condition.is_object())) {
        return Fail(n->location, "condition must be a string, a list or an and/or/not map");
      }
    }
    if (const YamlNode* n = node.Find("claude_options")) {
      if (n->IsMap()) {
        step->claude_options = YamlToSortedJson(*n);
      } else if (!n->IsNull()) {
        return Fail(n->location, "claude_options must be a mapping");
      }
    }
    if (const YamlNode* n = node.Find("model"); n != nullptr && !n->IsNull()) {
      auto model = ScalarText(n);
      if (!model) return Fail(n->location, "model must be a string");
      step->model = *model;
    }
    if (const YamlNode* n = node.Find("preset"); n != nullptr && !n->IsNull()) {
      auto preset = ScalarText(n);
      if (!preset || !IsKnownPreset(*preset)) {
        return Fail(n->location,
                    absl::StrCat("unknown preset \"", preset.value_or("?"),
                                 "\" (expected development, production, analysis, chat or "
                                 "test)"));
      }
      step->preset = *preset;
    }
    if (const YamlNode* n = node.Find("output_to_file"); n != nullptr && !n->IsNull()) {
      auto file = ScalarText(n);
      if (!file) return Fail(n->location, "output_to_file must be a string");
      if (!absl::StrContains(*file, "{{")) {
        if (absl::Status s = ValidateRelativePath(*file); !s.ok()) {
          return Fail(n->location, absl::StrCat("output_to_file: ", s.message()));
        }
      }
      step->output_to_file = *file;
    }
    RETURN_IF_ERROR_(LoadSignature(node));
    RETURN_IF_ERROR_(LoadFunctions(node));

    switch (step->kind) {
      case StepKind::kClaudeBatch:
        RETURN_IF_ERROR_(LoadBatch(node));
        break;
      case StepKind::kParallelClaude:
        RETURN_IF_ERROR_(LoadParallel(node));
        break;
      case StepKind::kSetVariable:
        RETURN_IF_ERROR_(LoadSetVariable(node));
        break;
      case StepKind::kForLoop:
      case StepKind::kWhileLoop:
        RETURN_IF_ERROR_(LoadLoop(node));
        break;
      case StepKind::kNestedPipeline:
        RETURN_IF_ERROR_(LoadNested(node));
        break;
      case StepKind::kDataTransform:
        RETURN_IF_ERROR_(LoadDataTransform(node));
        break;
      case StepKind::kFileOps:
        RETURN_IF_ERROR_(LoadFileOps(node));
        break;
      default: {
        const YamlNode* prompt = node.Find("prompt");
        if (NeedsPrompt(step->kind)) {
          RETURN_IF_ERROR_(
              LoadPrompt(prompt, node.location, /*results_available=*/true, &step->prompt));
        }
        if (step->kind == StepKind::kClaudeSession) RETURN_IF_ERROR_(LoadConversation(node));
        if (step->kind == StepKind::kGeminiInstructor) RETURN_IF_ERROR_(LoadResponseSchema(node));
      }
    }
    DetectJsonOutput();
    ComputeIgnoredOptions(node);
    return absl::OkStatus();
  }

 private:
  absl::Status Fail(const SourceLocation& location, absl::string_view message) const {
    return Error(location, absl::StrCat("step \"", step_->name, "\": ", message));
  }

  absl::Status LoadSignature(const YamlNode& node) {
    step_->signature_text = std::string(kDefaultSignature);
    const YamlNode* n = node.Find("signature");
    if (n != nullptr && !n->IsNull()) {
      auto text = ScalarText(n);
      if (!text) return Fail(n->location, "signature must be a string like \"a, b -> c\"");
      step_->signature_text = *text;
    }
    auto signature = ParseSignature(step_->signature_text);
    if (!signature.ok()) {
      return Fail(n != nullptr ? n->location : node.location,
                  absl::StrCat("invalid signature: ", signature.status().message()));
    }
    step_->signature = std::move(*signature);
    return absl::OkStatus();
  }

  absl::Status LoadFunctions(const YamlNode& node) {
    const YamlNode* n = node.Find("functions");
    if (n == nullptr || n->IsNull()) return absl::OkStatus();
    if (!n->IsSequence()) return Fail(n->location, "functions must be a list");
    for (const auto& item : n->items) {
      auto name = ScalarText(item.get());
      if (!name || gemini_functions_.count(*name) == 0) {
        return Fail(item->location,
                    absl::StrCat("references undefined function \"", name.value_or("?"), "\""));
      }
    }
    return absl::OkStatus();
  }

  // `results_available`: false inside claude_batch tasks, which pipeline_ex renders with an
  // empty result map (so a previous_response there can never work).
  absl::Status LoadPrompt(const YamlNode* prompt, const SourceLocation& step_location,
                          bool results_available, std::vector<PromptPart>* out) {
    if (prompt == nullptr || prompt->IsNull()) return Fail(step_location, "missing prompt");
    if (!prompt->IsSequence()) {
      return Fail(prompt->location,
                  "prompt must be a list of prompt parts ({type: static, content: ...})");
    }
    if (prompt->items.empty()) return Fail(prompt->location, "prompt is empty");
    for (const auto& item : prompt->items) {
      PromptPart part;
      RETURN_IF_ERROR_(LoadPart(*item, results_available, &part));
      out->push_back(std::move(part));
    }
    return absl::OkStatus();
  }

  absl::Status LoadPart(const YamlNode& node, bool results_available, PromptPart* part) {
    part->location = node.location;
    if (!node.IsMap()) return Fail(node.location, "prompt part must be a mapping");
    part->source = YamlToJson(node);
    auto type = ScalarText(node.Find("type"));
    if (!type) return Fail(node.location, "prompt part without type");
    auto require = [&](const char* key) -> const YamlNode* {
      const YamlNode* n = node.Find(key);
      return (n == nullptr || n->IsNull()) ? nullptr : n;
    };
    if (*type == "static") {
      part->kind = PromptPartKind::kStatic;
      const YamlNode* content = require("content");
      if (content == nullptr) return Fail(node.location, "static prompt part without content");
      if (!content->IsScalar()) {
        return Fail(content->location, "static prompt part content must be text");
      }
      part->content = YamlToSortedJson(*content);
      return absl::OkStatus();
    }
    if (*type == "file") {
      part->kind = PromptPartKind::kFile;
      const YamlNode* path_node = require("path");
      auto path = ScalarText(path_node);
      if (!path) return Fail(node.location, "file prompt part without path");
      part->path = *path;
      if (absl::StrContains(part->path, "{{")) return absl::OkStatus();  // checked at run time
      if (absl::Status s = ValidateRelativePath(part->path); !s.ok()) {
        return Fail(path_node->location, absl::StrCat("file prompt part: ", s.message()));
      }
      if (prompts_ != nullptr) {
        auto content = prompts_->Read(part->path, options_.max_prompt_file_bytes);
        if (!content.ok()) {
          return Fail(path_node->location,
                      absl::StrCat("file prompt part: ", content.status().message()));
        }
      }
      return absl::OkStatus();
    }
    if (*type == "previous_response") {
      part->kind = PromptPartKind::kPreviousResponse;
      const YamlNode* ref = require("step");
      if (ref == nullptr) ref = require("name");  // the design document's spelling
      auto step = ScalarText(ref);
      if (!step) return Fail(node.location, "previous_response prompt part missing 'step' field");
      part->step = *step;
      if (const YamlNode* extract = require("extract")) {
        auto text = ScalarText(extract);
        if (!text) return Fail(extract->location, "previous_response extract must be a string");
        part->extract = *text;
      }
      if (const YamlNode* strict = require("strict")) {
        const auto value = YamlToSortedJson(*strict);
        if (!value.is_boolean()) {
          return Fail(strict->location, "previous_response strict must be true or false");
        }
        part->strict = value.get<bool>();
      }
      if (!results_available) {
        return Fail(ref->location, "previous_response is not available inside claude_batch tasks");
      }
      if (earlier_.count(part->step) == 0) {
        if (pipeline_.FindStep(part->step) != nullptr || part->step == step_->name ||
            later_names_->count(part->step) > 0) {
          return Fail(ref->location, absl::StrCat("previous_response refers to step \"", part->step,
                                                  "\", which runs later"));
        }
        return Fail(ref->location,
                    absl::StrCat("previous_response refers to unknown step \"", part->step, "\""));
      }
      return absl::OkStatus();
    }
    if (*type == "session_context" || *type == "claude_continue") {
      part->kind = *type == "session_context" ? PromptPartKind::kSessionContext
                                              : PromptPartKind::kClaudeContinue;
      if (require("session_id") == nullptr) {
        return Fail(node.location, absl::StrCat(*type, " prompt part missing 'session_id' field"));
      }
      return absl::OkStatus();
    }
    return Fail(node.location, absl::StrCat("prompt part with invalid type \"", *type, "\""));
  }

  absl::Status LoadBatch(const YamlNode& node) {
    const YamlNode* tasks = node.Find("tasks");
    const YamlNode* prompt = node.Find("prompt");
    const bool has_tasks = tasks != nullptr && !tasks->IsNull();
    const bool has_prompt = prompt != nullptr && !prompt->IsNull();
    if (!has_tasks && !has_prompt) {
      return Fail(node.location, "claude_batch must have either 'prompt' or 'tasks'");
    }
    if (has_prompt) {
      RETURN_IF_ERROR_(
          LoadPrompt(prompt, node.location, /*results_available=*/false, &step_->prompt));
    }
    if (has_tasks) {
      if (!tasks->IsSequence()) return Fail(tasks->location, "tasks must be a list");
      if (tasks->items.empty() && !has_prompt) return Fail(tasks->location, "tasks is empty");
      for (size_t i = 0; i < tasks->items.size(); ++i) {
        const YamlNode& t = *tasks->items[i];
        if (!t.IsMap()) return Fail(t.location, "a batch task must be a mapping");
        BatchTask task;
        task.task_id = ScalarText(t.Find("task_id")).value_or(absl::StrCat("task_", i));
        const YamlNode* task_prompt = t.Find("prompt");
        const YamlNode* file = t.Find("file");
        if (task_prompt != nullptr && task_prompt->IsSequence()) {
          RETURN_IF_ERROR_(LoadPrompt(task_prompt, t.location, false, &task.prompt));
        } else if (task_prompt != nullptr && task_prompt->IsScalar()) {
          PromptPart part;
          part.kind = PromptPartKind::kStatic;
          part.content = task_prompt->scalar;
          part.location = task_prompt->location;
          part.source = {{"type", "static"}, {"content", task_prompt->scalar}};
          task.prompt.push_back(std::move(part));
        } else if (auto path = ScalarText(file)) {
          if (!absl::StrContains(*path, "{{")) {
            if (absl::Status s = ValidateRelativePath(*path); !s.ok()) {
              return Fail(file->location, absl::StrCat("batch task file: ", s.message()));
            }
          }
          task.file = *path;
          PromptPart file_part;
          file_part.kind = PromptPartKind::kFile;
          file_part.path = *path;
          file_part.location = file->location;
          file_part.source = {{"type", "file"}, {"path", *path}};
          PromptPart instruction;
          instruction.kind = PromptPartKind::kStatic;
          instruction.content = "Analyze this file";
          instruction.source = {{"type", "static"}, {"content", "Analyze this file"}};
          task.prompt.push_back(std::move(file_part));
          task.prompt.push_back(std::move(instruction));
        } else {
          return Fail(t.location,
                      absl::StrCat("batch task \"", task.task_id, "\" needs a prompt or a file"));
        }
        if (auto path = ScalarText(file)) task.file = *path;
        step_->tasks.push_back(std::move(task));
      }
    }
    if (step_->tasks.empty()) {
      BatchTask task;
      task.task_id = "default_task";
      task.prompt = step_->prompt;
      step_->tasks.push_back(std::move(task));
    }
    return absl::OkStatus();
  }

  absl::Status LoadParallel(const YamlNode& node) {
    const YamlNode* tasks = node.Find("parallel_tasks");
    if (tasks == nullptr || tasks->IsNull()) {
      return Fail(node.location, "parallel_claude missing required 'parallel_tasks' field");
    }
    if (!tasks->IsSequence() || tasks->items.empty()) {
      return Fail(tasks->location, "parallel_tasks must be a non-empty list");
    }
    std::set<std::string> ids;
    for (const auto& item : tasks->items) {
      if (!item->IsMap()) return Fail(item->location, "a parallel task must be a mapping");
      ParallelTask task;
      auto id = ScalarText(item->Find("id"));
      if (!id || id->empty()) return Fail(item->location, "a parallel task needs an id");
      if (!ids.insert(*id).second) {
        return Fail(item->location, absl::StrCat("duplicate parallel task id \"", *id, "\""));
      }
      task.id = *id;
      if (const YamlNode* options = item->Find("claude_options")) {
        if (options->IsMap()) {
          task.claude_options = YamlToSortedJson(*options);
        } else if (!options->IsNull()) {
          return Fail(options->location, "claude_options must be a mapping");
        }
      }
      RETURN_IF_ERROR_(LoadPrompt(item->Find("prompt"), item->location, true, &task.prompt));
      step_->parallel_tasks.push_back(std::move(task));
    }
    return absl::OkStatus();
  }

  // A string field: nullopt when absent or null; an error when present but not text.
  absl::StatusOr<std::optional<std::string>> OptionalString(const YamlNode& node,
                                                            const char* key) const {
    const YamlNode* n = node.Find(key);
    if (n == nullptr || n->IsNull()) return std::optional<std::string>();
    auto text = ScalarText(n);
    if (!text) return Fail(n->location, absl::StrCat(key, " must be a string"));
    return std::optional<std::string>(*text);
  }

  absl::StatusOr<std::string> RequiredString(const YamlNode& node, const char* key) const {
    auto text = OptionalString(node, key);
    if (!text.ok()) return text.status();
    if (!text->has_value() || (*text)->empty()) {
      return Fail(node.location, absl::StrCat(step_->type, " needs a `", key, "` string"));
    }
    return **text;
  }

  // A path the step reads or writes under a confined directory: checked now unless templated.
  absl::Status CheckPathField(const YamlNode& node, const char* key, bool required) const {
    auto text = OptionalString(node, key);
    if (!text.ok()) return text.status();
    if (!text->has_value()) {
      if (!required) return absl::OkStatus();
      return Fail(node.location,
                  absl::StrCat(step_->type, " ", StringOption(step_->config, "operation"),
                               " needs a `", key, "` path"));
    }
    if (absl::StrContains(**text, "{{")) return absl::OkStatus();
    const std::string path = WithoutDotSlash(**text);
    if (path.empty() || path == ".") return absl::OkStatus();
    if (absl::Status s = ValidateRelativePath(path); !s.ok()) {
      return Fail(node.Find(key)->location, absl::StrCat(key, ": ", s.message()));
    }
    return absl::OkStatus();
  }

  static std::string StringOption(const json& config, const char* key) {
    auto it = config.find(key);
    return (it != config.end() && it->is_string()) ? it->get<std::string>() : "";
  }

  absl::Status CheckDepth(const YamlNode& node) const {
    if (scope_.depth + 1 > options_.max_nesting_depth) {
      return Fail(node.location,
                  absl::StrCat("nesting depth ", scope_.depth + 1, " exceeds the limit of ",
                               options_.max_nesting_depth,
                               " loops and nested pipelines (pipeline.max_nesting_depth)"));
    }
    return absl::OkStatus();
  }

  // `variables: {k: v}` or the single form `variable: k` + `value: v`.
  absl::Status LoadSetVariable(const YamlNode& node) {
    const YamlNode* vars = node.Find("variables");
    const YamlNode* var = node.Find("variable");
    if (var != nullptr && !var->IsNull()) {
      if (vars != nullptr && !vars->IsNull()) {
        return Fail(var->location, "use either `variables` or `variable`/`value`, not both");
      }
      auto name = ScalarText(var);
      if (!name || name->empty()) return Fail(var->location, "variable must be a name");
      if (node.Find("value") == nullptr) {
        return Fail(var->location, "set_variable with `variable` needs a `value`");
      }
      return absl::OkStatus();
    }
    if (vars == nullptr || !(vars->IsMap() || vars->IsNull())) {
      return Fail(node.location,
                  "set_variable needs a `variables` mapping (or `variable` and `value`)");
    }
    return absl::OkStatus();
  }

  absl::Status LoadLoop(const YamlNode& node) {
    const bool is_for = step_->kind == StepKind::kForLoop;
    if (is_for) {
      if (auto s = RequiredString(node, "iterator"); !s.ok()) return s.status();
      if (auto s = RequiredString(node, "data_source"); !s.ok()) return s.status();
    } else {
      const YamlNode* condition = node.Find("condition");
      if (condition == nullptr || condition->IsNull()) {
        return Fail(node.location, "while_loop needs a `condition`");
      }
      if (const YamlNode* max = node.Find("max_iterations"); max != nullptr && !max->IsNull()) {
        const json value = YamlToSortedJson(*max);
        if (!value.is_number_integer() || value.get<int64_t>() < 1 ||
            value.get<int64_t>() > static_cast<int64_t>(options_.max_loop_iterations)) {
          return Fail(max->location, absl::StrCat("max_iterations must be an integer from 1 to ",
                                                  options_.max_loop_iterations,
                                                  " (pipeline.max_loop_iterations)"));
        }
      }
    }
    for (const char* key : {"break_condition", "continue_condition"}) {
      if (auto s = OptionalString(node, key); !s.ok()) return s.status();
    }
    const YamlNode* steps = node.Find("steps");
    if (steps == nullptr || !steps->IsSequence() || steps->items.empty()) {
      return Fail(steps != nullptr ? steps->location : node.location,
                  absl::StrCat(step_->type, " needs a non-empty `steps` list"));
    }
    RETURN_IF_ERROR_(CheckDepth(node));
    StepScope inner = scope_;
    inner.path_prefix = absl::StrCat(step_->path, "/");
    inner.pointer_prefix = absl::StrCat(step_->document_pointer, "/steps");
    inner.depth = scope_.depth + 1;
    std::map<std::string, size_t> earlier = earlier_;
    earlier.emplace("loop", 0);  // the loop context pseudo-result
    return LoadStepList(*steps, inner, std::move(earlier), later_names_, state_, &step_->sub_steps);
  }

  absl::Status LoadNested(const YamlNode& node) {
    const YamlNode* file = node.Find("pipeline_file");
    const YamlNode* inline_def = node.Find("pipeline");
    const bool has_file = file != nullptr && !file->IsNull();
    const bool has_inline = inline_def != nullptr && !inline_def->IsNull();
    if (!has_file && !has_inline) {
      if (const YamlNode* ref = node.Find("pipeline_ref"); ref != nullptr && !ref->IsNull()) {
        return Fail(ref->location,
                    "pipeline_ref is not supported (pipeline_ex has no pipeline registry); use "
                    "pipeline_file or pipeline");
      }
      return Fail(node.location, "No pipeline source specified. Use 'pipeline_file' or 'pipeline'");
    }
    if (has_file && has_inline) {
      return Fail(file->location, "use either pipeline_file or pipeline, not both");
    }
    if (const YamlNode* inputs = node.Find("inputs");
        inputs != nullptr && !inputs->IsNull() && !inputs->IsMap()) {
      return Fail(inputs->location, "inputs must be a mapping");
    }
    if (const YamlNode* config = node.Find("config");
        config != nullptr && !config->IsNull() && !config->IsMap()) {
      return Fail(config->location, "config must be a mapping");
    }
    if (const YamlNode* outputs = node.Find("outputs"); outputs != nullptr && !outputs->IsNull()) {
      if (!outputs->IsSequence()) return Fail(outputs->location, "outputs must be a list");
      for (const auto& item : outputs->items) {
        if (item->IsScalar()) continue;
        if (item->IsMap() && ScalarText(item->Find("path")).has_value()) {
          const YamlNode* as = item->Find("as");
          if (as == nullptr || as->IsNull() || as->IsScalar()) continue;
        }
        return Fail(item->location, "an output must be a step name or {path: a.b, as: name}");
      }
    }
    RETURN_IF_ERROR_(CheckDepth(node));
    auto child = std::make_shared<Pipeline>();
    const std::string prefix = absl::StrCat(step_->path, "/");
    if (has_inline) {
      if (!inline_def->IsMap()) {
        return Fail(inline_def->location, "pipeline must be a mapping with `steps`");
      }
      const YamlNode* wrapped = inline_def->Find("workflow");
      const YamlNode& workflow = wrapped != nullptr ? *wrapped : *inline_def;
      if (!workflow.IsMap()) return Fail(workflow.location, "'workflow' must be a mapping");
      const std::string pointer = absl::StrCat(step_->document_pointer, "/pipeline",
                                               wrapped != nullptr ? "/workflow" : "", "/steps");
      RETURN_IF_ERROR_(LoadWorkflow(workflow, "unnamed_nested_pipeline", prefix, pointer,
                                    scope_.depth + 1, state_, child.get()));
      step_->child = std::move(child);
      return absl::OkStatus();
    }
    auto text = ScalarText(file);
    if (!text || text->empty()) return Fail(file->location, "pipeline_file must be a path");
    if (absl::StrContains(*text, "{{")) {
      return Fail(file->location, "pipeline_file must be a literal path (no {{templates}})");
    }
    const std::string path = WithoutDotSlash(*text);
    if (absl::Status s = ValidateRelativePath(path); !s.ok()) {
      return Fail(file->location, absl::StrCat("pipeline_file: ", s.message()));
    }
    if (prompts_ == nullptr) {
      return Fail(file->location,
                  "pipeline_file needs the server's pipeline.prompts_dir (pipeline files are "
                  "read from there)");
    }
    if (std::find(state_->files.begin(), state_->files.end(), path) != state_->files.end()) {
      std::vector<std::string> chain = state_->files;
      chain.push_back(path);
      return Fail(file->location,
                  absl::StrCat("circular pipeline_file reference: ", absl::StrJoin(chain, " -> ")));
    }
    auto content = prompts_->Read(path, options_.yaml.max_bytes);
    if (!content.ok()) {
      return Fail(file->location, absl::StrCat("pipeline_file: ", content.status().message()));
    }
    auto root = ParseYaml(*content, options_.yaml);
    absl::Status status = root.status();
    if (status.ok()) {
      const YamlNode* workflow = (*root)->IsMap() ? (*root)->Find("workflow") : nullptr;
      if (workflow == nullptr || !workflow->IsMap()) {
        status = absl::InvalidArgumentError("missing required 'workflow' section");
      } else {
        state_->files.push_back(path);
        status = LoadWorkflow(*workflow, "", prefix, "/workflow/steps", scope_.depth + 1, state_,
                              child.get());
        state_->files.pop_back();
        child->document = YamlToJson(**root);
      }
    }
    if (!status.ok()) {
      return Fail(file->location, absl::StrCat("pipeline_file \"", path, "\": ", status.message()));
    }
    step_->child_file = path;
    step_->child = std::move(child);
    return absl::OkStatus();
  }

  absl::Status LoadDataTransform(const YamlNode& node) {
    if (auto s = RequiredString(node, "input_source"); !s.ok()) return s.status();
    if (auto s = OptionalString(node, "output_field"); !s.ok()) return s.status();
    const YamlNode* ops = node.Find("operations");
    if (ops == nullptr || ops->IsNull()) return absl::OkStatus();
    if (!ops->IsSequence()) return Fail(ops->location, "operations must be a list");
    static const std::set<std::string> kOperations = {"filter", "map",      "aggregate",
                                                      "join",   "group_by", "sort"};
    static const std::set<std::string> kFunctions = {"sum", "average", "count", "max",
                                                     "min", "first",   "last",  "unique"};
    for (size_t i = 0; i < ops->items.size(); ++i) {
      const YamlNode& op = *ops->items[i];
      const std::string where = absl::StrCat("operations[", i, "]");
      if (!op.IsMap()) return Fail(op.location, absl::StrCat(where, " must be a mapping"));
      auto name = ScalarText(op.Find("operation"));
      if (!name || kOperations.count(*name) == 0) {
        return Fail(op.location,
                    absl::StrCat(where, ": unknown operation \"", name.value_or("?"),
                                 "\" (expected filter, map, aggregate, join, group_by or sort)"));
      }
      auto need = [&](const char* key) -> absl::Status {
        if (!ScalarText(op.Find(key)).has_value()) {
          return Fail(op.location, absl::StrCat(where, ": ", *name, " needs `", key, "`"));
        }
        return absl::OkStatus();
      };
      if (*name == "filter") RETURN_IF_ERROR_(need("condition"));
      if (*name == "group_by" || *name == "sort") RETURN_IF_ERROR_(need("field"));
      if (*name == "join") {
        RETURN_IF_ERROR_(need("right_source"));
        RETURN_IF_ERROR_(need("join_key"));
      }
      if (*name == "aggregate") {
        auto fn = ScalarText(op.Find("function"));
        if (fn && kFunctions.count(*fn) == 0) {
          return Fail(op.Find("function")->location,
                      absl::StrCat(where, ": unknown aggregate function \"", *fn, "\""));
        }
      }
      if (*name == "sort") {
        auto order = ScalarText(op.Find("order"));
        if (order && *order != "asc" && *order != "desc") {
          return Fail(op.Find("order")->location,
                      absl::StrCat(where, ": order must be asc or desc"));
        }
      }
      if (*name == "map") {
        const YamlNode* mapping = op.Find("mapping");
        if (mapping != nullptr && !mapping->IsNull() && !mapping->IsMap()) {
          return Fail(mapping->location, absl::StrCat(where, ": mapping must be a mapping"));
        }
      }
    }
    return absl::OkStatus();
  }

  absl::Status LoadFileOps(const YamlNode& node) {
    auto operation = RequiredString(node, "operation");
    if (!operation.ok()) return operation.status();
    const std::string& op = *operation;
    if (op == "copy" || op == "move" || op == "convert") {
      RETURN_IF_ERROR_(CheckPathField(node, "source", true));
      RETURN_IF_ERROR_(CheckPathField(node, "destination", true));
      if (op == "convert") {
        auto format = RequiredString(node, "format");
        if (!format.ok()) return format.status();
        if (*format != "csv_to_json" && *format != "json_to_csv" && *format != "yaml_to_json") {
          return Fail(node.Find("format")->location,
                      absl::StrCat("unsupported format \"", *format,
                                   "\" (expected csv_to_json, json_to_csv or yaml_to_json)"));
        }
      }
      return absl::OkStatus();
    }
    if (op == "delete" || op == "list") return CheckPathField(node, "path", true);
    if (op == "validate") {
      const YamlNode* files = node.Find("files");
      if (files == nullptr || !files->IsSequence() || files->items.empty()) {
        return Fail(node.location, "file_ops validate needs a non-empty `files` list");
      }
      for (const auto& f : files->items) {
        if (!f->IsMap()) return Fail(f->location, "a file to validate must be a mapping");
        RETURN_IF_ERROR_(CheckPathField(*f, "path", true));
      }
      return absl::OkStatus();
    }
    if (op == "stream_copy" || op == "stream_process") {
      return Fail(node.Find("operation")->location,
                  absl::StrCat("file_ops operation \"", op, "\" is not supported by this engine"));
    }
    return Fail(node.Find("operation")->location,
                absl::StrCat("unsupported file_ops operation \"", op,
                             "\" (expected copy, move, delete, validate, list or convert)"));
  }

  // claude_session `conversation:` turns: alternating user/assistant, ending with assistant
  // (the step's prompt is the next user turn).
  absl::Status LoadConversation(const YamlNode& node) {
    const YamlNode* conv = node.Find("conversation");
    if (conv == nullptr || conv->IsNull()) return absl::OkStatus();
    if (!conv->IsSequence()) return Fail(conv->location, "conversation must be a list of turns");
    for (size_t i = 0; i < conv->items.size(); ++i) {
      const YamlNode& turn = *conv->items[i];
      if (!turn.IsMap()) return Fail(turn.location, "a conversation turn must be a mapping");
      auto role = ScalarText(turn.Find("role"));
      const std::string expected = i % 2 == 0 ? "user" : "assistant";
      if (!role || *role != expected) {
        return Fail(turn.location,
                    absl::StrCat("conversation[", i, "].role must be \"", expected,
                                 "\" (turns alternate user/assistant, starting with user)"));
      }
      auto content = ScalarText(turn.Find("content"));
      if (!content) {
        return Fail(turn.location, absl::StrCat("conversation[", i, "] needs `content` text"));
      }
      step_->conversation.push_back(ConversationTurn{*role, *content});
    }
    if (!step_->conversation.empty() && step_->conversation.back().role != "assistant") {
      return Fail(conv->location,
                  "conversation must end with an assistant turn (the prompt is the next user "
                  "turn)");
    }
    return absl::OkStatus();
  }

  // gemini_instructor's response schema: `response_schema` / `output_schema`, else the first
  // of `functions` (its parameters), else pipeline_ex's {text, analysis, summary}.
  absl::Status LoadResponseSchema(const YamlNode& node) {
    for (const char* key : {"response_schema", "output_schema"}) {
      const YamlNode* n = node.Find(key);
      if (n == nullptr || n->IsNull()) continue;
      if (!n->IsMap())
        return Fail(n->location, absl::StrCat(key, " must be a JSON schema mapping"));
      step_->response_schema = YamlToSortedJson(*n);
      return absl::OkStatus();
    }
    if (const YamlNode* fns = node.Find("functions"); fns != nullptr && fns->IsSequence()) {
      if (!fns->items.empty()) {
        auto it = gemini_functions_.find(ScalarText(fns->items[0].get()).value_or(""));
        if (it != gemini_functions_.end()) {
          step_->response_schema = it->second;
          return absl::OkStatus();
        }
      }
    }
    step_->response_schema = DefaultInstructorSchema();
    return absl::OkStatus();
  }

  void DetectJsonOutput() {
    const json& c = step_->config;
    if (step_->kind == StepKind::kGemini &&
        c.value("response_mime_type", json()) == "application/json") {
      step_->json_output = true;
    }
    if (step_->kind == StepKind::kClaudeExtract) {
      const json config = c.value("extraction_config", json::object());
      if (config.is_object() && config.value("format", json()) == "json") {
        step_->json_output = true;
      }
    }
    if (c.contains("output_schema") && !c["output_schema"].is_null()) step_->json_output = true;
    if (step_->kind == StepKind::kGeminiInstructor) step_->json_output = true;
  }

  static bool MeaningfulClaudeOption(absl::string_view key, bool enhanced) {
    return key == "model" || key == "system_prompt" || key == "append_system_prompt" ||
           key == "timeout_ms" || key == "temperature" || key == "max_tokens" ||
           (enhanced && key == "retry_config");
  }

  void ComputeIgnoredOptions(const YamlNode& node) {
    std::set<std::string> ignored;
    auto claude_options_of = [&](const json& own) {
      const bool enhanced = IsEnhanced(step_->kind);
      json effective = own;
      if (enhanced) {
        const std::string preset = EffectivePreset(pipeline_, *step_);
        effective = MergePreset(preset, own);
        if (step_->kind == StepKind::kClaudeSmart) {
          effective = ApplyPresetOptimizations(preset, effective);
        }
      }
      for (auto it = effective.begin(); it != effective.end(); ++it) {
        if (!MeaningfulClaudeOption(it.key(), enhanced)) {
          ignored.insert(absl::StrCat("claude_options.", it.key()));
        }
      }
    };
    if (step_->kind == StepKind::kParallelClaude) {
      for (const auto& task : step_->parallel_tasks) claude_options_of(task.claude_options);
    } else if (absl::StartsWith(step_->type, "claude")) {
      claude_options_of(step_->claude_options);
    }
    const json& c = step_->config;
    for (const char* key : {"functions", "tools", "streaming", "candidate_count",
                            "presence_penalty", "frequency_penalty"}) {
      if (c.contains(key)) ignored.insert(key);
    }
    if (step_->kind == StepKind::kGeminiInstructor) ignored.erase("functions");
    if (step_->kind == StepKind::kForLoop) {
      for (const char* key : {"parallel", "max_parallel", "batch_size"}) {
        if (c.contains(key)) ignored.insert(key);
      }
    }
    if (step_->kind == StepKind::kGemini || step_->kind == StepKind::kGeminiInstructor) {
      const json budget = c.value("token_budget", json::object());
      if (budget.is_object()) {
        for (const char* key : {"top_p", "top_k"}) {
          if (budget.contains(key)) ignored.insert(absl::StrCat("token_budget.", key));
        }
      }
    }
    if (step_->kind == StepKind::kClaudeSession) ignored.insert("session_config");
    (void)node;
    step_->ignored_options.assign(ignored.begin(), ignored.end());
  }

  const LoadOptions& options_;
  const Pipeline& pipeline_;
  const std::map<std::string, size_t>& earlier_;
  const ConfinedDirectory* prompts_;
  const std::map<std::string, json>& gemini_functions_;
  LoadState* state_;
  const StepScope& scope_;
  Step* step_ = nullptr;

 public:
  const std::set<std::string>* later_names_ = nullptr;
};

absl::Status LoadStepList(const YamlNode& steps, const StepScope& scope,
                          std::map<std::string, size_t> earlier,
                          const std::set<std::string>* outer_names, LoadState* state,
                          std::vector<Step>* out) {
  const LoadOptions& options = *state->options;
  state->total_steps += steps.items.size();
  if (state->total_steps > options.max_steps) {
    const bool nested = state->total_steps != steps.items.size();
    return Error(
        steps.location,
        absl::StrCat("workflow has ", nested ? "at least " : "", state->total_steps, " steps",
                     nested ? " (steps in loops and nested pipelines count)" : "",
                     "; the limit is ", options.max_steps));
  }
  // Names first: duplicates, and "later step" vs "unknown step" for previous_response.
  std::set<std::string> all_names;
  if (outer_names != nullptr) all_names = *outer_names;
  std::map<std::string, SourceLocation> first_seen;
  std::vector<std::string> names;
  for (size_t i = 0; i < steps.items.size(); ++i) {
    const YamlNode& node = *steps.items[i];
    if (!node.IsMap()) {
      return Error(node.location, absl::StrCat("step ", i + 1, " must be a mapping"));
    }
    const YamlNode* step_name = node.Find("name");
    auto text = ScalarText(step_name);
    if (!text || text->empty()) {
      return Error(node.location, absl::StrCat("step ", i + 1, " missing required 'name'"));
    }
    if (auto [it, inserted] = first_seen.emplace(*text, step_name->location); !inserted) {
      return Error(step_name->location,
                   absl::StrCat("step \"", *text, "\": duplicate step name (first defined at ",
                                FormatLocation(it->second), ")"));
    }
    all_names.insert(*text);
    names.push_back(*text);
  }
  for (size_t i = 0; i < steps.items.size(); ++i) {
    const YamlNode& node = *steps.items[i];
    Step step;
    step.name = names[i];
    step.path = absl::StrCat(scope.path_prefix, names[i]);
    step.document_pointer = absl::StrCat(scope.pointer_prefix, "/", i);
    step.index = i;
    step.location = node.location;
    StepLoader loader(state, scope, earlier);
    loader.later_names_ = &all_names;
    if (absl::Status s = loader.Load(node, &step); !s.ok()) return s;
    earlier.emplace(step.name, i);
    // A loop's sub-step results stay visible after it (the last iteration's).
    for (const Step& sub : step.sub_steps) earlier.emplace(sub.name, i);
    out->push_back(std::move(step));
  }
  return absl::OkStatus();
}

absl::Status LoadWorkflow(const YamlNode& workflow, const std::string& default_name,
                          const std::string& path_prefix, const std::string& pointer_prefix,
                          int depth, LoadState* state, Pipeline* pipeline) {
  const YamlNode* name = workflow.Find("name");
  auto name_text = ScalarText(name);
  if (!name_text || name_text->empty()) {
    if (default_name.empty() || (name != nullptr && !name->IsNull())) {
      return Error(name != nullptr ? name->location : workflow.location,
                   "workflow missing required 'name'");
    }
    name_text = default_name;
  }
  pipeline->name = *name_text;

  std::string environment_mode;
  if (const YamlNode* env = workflow.Find("environment"); env != nullptr && env->IsMap()) {
    environment_mode = ScalarText(env->Find("mode")).value_or("");
  }
  pipeline->environment_mode = environment_mode;
  if (const YamlNode* defaults = workflow.Find("defaults");
      defaults != nullptr && !defaults->IsNull()) {
    if (!defaults->IsMap()) return Error(defaults->location, "'defaults' must be a mapping");
    if (const YamlNode* preset = defaults->Find("claude_preset");
        preset != nullptr && !preset->IsNull()) {
      auto text = ScalarText(preset);
      if (!text || !IsKnownPreset(*text)) {
        return Error(preset->location,
                     absl::StrCat("unknown defaults.claude_preset \"", text.value_or("?"),
                                  "\" (expected development, production, analysis, chat or "
                                  "test)"));
      }
      pipeline->default_preset = *text;
    }
    if (const YamlNode* dir = defaults->Find("output_dir"); dir != nullptr && !dir->IsNull()) {
      auto text = ScalarText(dir);
      if (!text) return Error(dir->location, "defaults.output_dir must be a string");
      pipeline->output_dir = *text;
    }
  }
  if (const YamlNode* vars = workflow.Find("global_vars"); vars != nullptr && !vars->IsNull()) {
    if (!vars->IsMap()) return Error(vars->location, "'global_vars' must be a mapping");
    pipeline->global_vars = YamlToSortedJson(*vars);
  }
  std::map<std::string, json> gemini_functions;
  if (const YamlNode* fns = workflow.Find("gemini_functions"); fns != nullptr && !fns->IsNull()) {
    if (!fns->IsMap()) {
      return Error(fns->location, "gemini_functions must be a map of function definitions");
    }
    for (const auto& entry : fns->entries) {
      const YamlNode& def = *entry.value;
      if (!def.IsMap()) {
        return Error(def.location, absl::StrCat("function \"", entry.key, "\" must be a map"));
      }
      const YamlNode* description = def.Find("description");
      const YamlNode* parameters = def.Find("parameters");
      if (description == nullptr || description->IsNull()) {
        return Error(def.location,
                     absl::StrCat("function \"", entry.key, "\" missing 'description'"));
      }
      if (parameters == nullptr || !parameters->IsMap()) {
        return Error(def.location,
                     absl::StrCat("function \"", entry.key, "\" needs a 'parameters' map"));
      }
      gemini_functions[entry.key] = YamlToSortedJson(*parameters);
    }
  }

  const YamlNode* steps = workflow.Find("steps");
  if (steps == nullptr || steps->IsNull()) {
    return Error(workflow.location, "workflow missing required 'steps' list");
  }
  if (!steps->IsSequence()) return Error(steps->location, "'steps' must be a list");
  if (steps->items.empty()) {
    return Error(steps->location, "workflow must contain at least one step");
  }
  StepScope scope;
  scope.pipeline = pipeline;
  scope.gemini_functions = &gemini_functions;
  scope.path_prefix = path_prefix;
  scope.pointer_prefix = pointer_prefix;
  scope.depth = depth;
  return LoadStepList(*steps, scope, {}, nullptr, state, &pipeline->steps);
}

}  // namespace

absl::StatusOr<Pipeline> LoadPipeline(std::string_view yaml, const LoadOptions& options) {
  auto root_or = ParseYaml(yaml, options.yaml);
  if (!root_or.ok()) return root_or.status();
  const YamlNode& root = **root_or;
  if (!root.IsMap()) {
    return Error(root.location.line > 0 ? root.location : SourceLocation{1, 1},
                 "a pipeline must be a mapping with a 'workflow' key");
  }
  const YamlNode* workflow = root.Find("workflow");
  if (workflow == nullptr || workflow->IsNull()) {
    return Error(root.location, "missing required 'workflow' section");
  }
  if (!workflow->IsMap()) return Error(workflow->location, "'workflow' must be a mapping");

  std::unique_ptr<ConfinedDirectory> prompts;
  if (!options.prompts_dir.empty()) {
    auto dir = ConfinedDirectory::Open(options.prompts_dir);
    if (!dir.ok()) return dir.status();
    prompts = std::move(*dir);
  }
  LoadState state;
  state.options = &options;
  state.prompts = prompts.get();
  Pipeline pipeline;
  if (absl::Status s =
          LoadWorkflow(*workflow, "", "", "/workflow/steps", /*depth=*/0, &state, &pipeline);
      !s.ok()) {
    return s;
  }
  pipeline.document = YamlToJson(root);
  return pipeline;
}

}  // namespace elexirion::pipeline
