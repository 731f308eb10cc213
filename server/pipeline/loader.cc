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

// Types pipeline_ex dispatches that this engine does not run.
bool IsUnsupportedPipelineExType(absl::string_view type) {
  return type == "gemini_instructor" || type == "for_loop" || type == "while_loop" ||
         type == "data_transform" || type == "file_ops" || type == "pipeline" ||
         type == "test_echo";
}

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
         kind == StepKind::kClaudeSession;
}

// The scalar text of a node, or nullopt for non-scalars.
std::optional<std::string> ScalarText(const YamlNode* node) {
  if (node == nullptr || !node->IsScalar()) return std::nullopt;
  return node->scalar;
}

// Loads one step of one document. Not thread safe: one per step, on the loading thread.
class StepLoader {
 public:
  StepLoader(const LoadOptions& options, const Pipeline& pipeline,
             const std::map<std::string, size_t>& earlier_steps, const ConfinedDirectory* prompts,
             const std::set<std::string>& gemini_functions)
      : options_(options),
        pipeline_(pipeline),
        earlier_(earlier_steps),
        prompts_(prompts),
        gemini_functions_(gemini_functions) {}

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
      case StepKind::kSetVariable: {
        const YamlNode* vars = node.Find("variables");
        if (vars == nullptr || !(vars->IsMap() || vars->IsNull())) {
          return Fail(node.location, "set_variable needs a `variables` mapping");
        }
        break;
      }
      default: {
        const YamlNode* prompt = node.Find("prompt");
        if (NeedsPrompt(step->kind)) {
          RETURN_IF_ERROR_(
              LoadPrompt(prompt, node.location, /*results_available=*/true, &step->prompt));
        }
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
    } else if (step_->kind != StepKind::kGemini && step_->kind != StepKind::kSetVariable) {
      claude_options_of(step_->claude_options);
    }
    const json& c = step_->config;
    for (const char* key : {"functions", "tools", "streaming", "candidate_count",
                            "presence_penalty", "frequency_penalty"}) {
      if (c.contains(key)) ignored.insert(key);
    }
    if (step_->kind == StepKind::kGemini) {
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
  const std::set<std::string>& gemini_functions_;
  Step* step_ = nullptr;

 public:
  const std::set<std::string>* later_names_ = nullptr;
};

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

  Pipeline pipeline;
  const YamlNode* name = workflow->Find("name");
  auto name_text = ScalarText(name);
  if (!name_text || name_text->empty()) {
    return Error(name != nullptr ? name->location : workflow->location,
                 "workflow missing required 'name'");
  }
  pipeline.name = *name_text;

  std::string environment_mode;
  if (const YamlNode* env = workflow->Find("environment"); env != nullptr && env->IsMap()) {
    environment_mode = ScalarText(env->Find("mode")).value_or("");
  }
  pipeline.environment_mode = environment_mode;
  if (const YamlNode* defaults = workflow->Find("defaults");
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
      pipeline.default_preset = *text;
    }
    if (const YamlNode* dir = defaults->Find("output_dir"); dir != nullptr && !dir->IsNull()) {
      auto text = ScalarText(dir);
      if (!text) return Error(dir->location, "defaults.output_dir must be a string");
      pipeline.output_dir = *text;
    }
  }
  if (const YamlNode* vars = workflow->Find("global_vars"); vars != nullptr && !vars->IsNull()) {
    if (!vars->IsMap()) return Error(vars->location, "'global_vars' must be a mapping");
    pipeline.global_vars = YamlToSortedJson(*vars);
  }
  std::set<std::string> gemini_functions;
  if (const YamlNode* fns = workflow->Find("gemini_functions"); fns != nullptr && !fns->IsNull()) {
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
      gemini_functions.insert(entry.key);
    }
  }

  const YamlNode* steps = workflow->Find("steps");
  if (steps == nullptr || steps->IsNull()) {
    return Error(workflow->location, "workflow missing required 'steps' list");
  }
  if (!steps->IsSequence()) return Error(steps->location, "'steps' must be a list");
  if (steps->items.empty()) {
    return Error(steps->location, "workflow must contain at least one step");
  }
  if (steps->items.size() > options.max_steps) {
    return Error(steps->location, absl::StrCat("workflow has ", steps->items.size(),
                                               " steps; the limit is ", options.max_steps));
  }

  std::unique_ptr<ConfinedDirectory> prompts;
  if (!options.prompts_dir.empty()) {
    auto dir = ConfinedDirectory::Open(options.prompts_dir);
    if (!dir.ok()) return dir.status();
    prompts = std::move(*dir);
  }

  // Names first: duplicates, and "later step" vs "unknown step" for previous_response.
  std::set<std::string> all_names;
  std::map<std::string, SourceLocation> first_seen;
  std::vector<std::string> names;
  for (size_t i = 0; i < steps->items.size(); ++i) {
    const YamlNode& node = *steps->items[i];
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

  std::map<std::string, size_t> earlier;
  for (size_t i = 0; i < steps->items.size(); ++i) {
    const YamlNode& node = *steps->items[i];
    Step step;
    step.name = names[i];
    step.index = i;
    step.location = node.location;
    StepLoader loader(options, pipeline, earlier, prompts.get(), gemini_functions);
    loader.later_names_ = &all_names;
    if (absl::Status s = loader.Load(node, &step); !s.ok()) return s;
    earlier.emplace(step.name, i);
    pipeline.steps.push_back(std::move(step));
  }
  pipeline.document = YamlToJson(root);
  return pipeline;
}

}  // namespace elexirion::pipeline
