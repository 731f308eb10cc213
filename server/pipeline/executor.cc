#include "server/pipeline/executor.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "server/pipeline/conditions.h"
#include "server/pipeline/data_transform.h"
#include "server/pipeline/elixir_format.h"
#include "server/pipeline/extraction.h"
#include "server/pipeline/file_ops.h"
#include "server/pipeline/presets.h"
#include "server/pipeline/prompt_builder.h"
#include "server/pipeline/strings.h"
#include "server/pipeline/templates.h"

namespace elexirion::pipeline {
namespace {

using json = nlohmann::json;

#define RETURN_IF_ERROR_(expr)         \
  do {                                 \
    absl::Status status_ = (expr);     \
    if (!status_.ok()) return status_; \
  } while (false)

// Keys of a result map that parsed JSON output never overwrites.
bool ReservedResultKey(const std::string& key) {
  return key == "text" || key == "success" || key == "cost" || key == "model" || key == "tokens";
}

// The model's text as JSON: trimmed, ```json fences removed; nullopt when it is not JSON.
std::optional<json> ParseJsonResponse(absl::string_view text) {
  absl::string_view t = absl::StripAsciiWhitespace(text);
  if (absl::StartsWith(t, "```")) {
    const size_t newline = t.find('\n');
    if (newline != absl::string_view::npos) t = t.substr(newline + 1);
    if (absl::EndsWith(t, "```")) t = t.substr(0, t.size() - 3);
    t = absl::StripAsciiWhitespace(t);
  }
  if (t.empty()) return std::nullopt;
  return ParseJsonSafely(StdSv(t));
}

// Retry matching text for a status: its message plus the words pipeline_ex's error strings
// would contain for the same condition ("timeout", "rate_limit", ...).
std::string ReasonText(const absl::Status& status) {
  std::string text = absl::AsciiStrToLower(status.message());
  switch (status.code()) {
    case absl::StatusCode::kDeadlineExceeded:
      absl::StrAppend(&text, " [timeout]");
      break;
    case absl::StatusCode::kUnavailable:
      absl::StrAppend(&text, " [api_error temporary_error]");
      break;
    case absl::StatusCode::kResourceExhausted:
      absl::StrAppend(&text, " [rate_limit api_error]");
      break;
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
      absl::StrAppend(&text, " [api_error]");
      break;
    default:
      break;
  }
  return text;
}

bool MatchesAny(const std::string& reason, const json& conditions) {
  if (!conditions.is_array()) return false;
  for (const json& c : conditions) {
    if (!c.is_string()) continue;
    if (absl::StrContains(reason, absl::AsciiStrToLower(c.get<std::string>()))) return true;
  }
  return false;
}

std::optional<int64_t> IntOption(const json& options, const char* key) {
  auto it = options.find(key);
  if (it == options.end()) return std::nullopt;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_number_float()) return static_cast<int64_t>(it->get<double>());
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    char* end = nullptr;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    if (end != s.c_str()) return v;
  }
  return std::nullopt;
}

std::optional<double> NumberOption(const json& options, const char* key) {
  auto it = options.find(key);
  if (it == options.end()) return std::nullopt;
  if (it->is_number()) return it->get<double>();
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (end != s.c_str()) return v;
  }
  return std::nullopt;
}

std::string StringOption(const json& options, const char* key) {
  auto it = options.find(key);
  if (it == options.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

std::string SystemPrompt(const json& options) {
  const std::string system = StringOption(options, "system_prompt");
  const std::string append = StringOption(options, "append_system_prompt");
  if (system.empty()) return append;
  if (append.empty()) return system;
  return absl::StrCat(system, "\n\n", append);
}

std::string ConditionText(const json& condition) {
  if (condition.is_string()) return condition.get<std::string>();
  if (condition.is_boolean()) return condition.get<bool>() ? "true" : "N/A";
  if (condition.is_array()) {
    auto text = ElixirToString(condition);
    if (text.ok()) return *text;
  }
  return JasonEncode(condition, /*pretty=*/false);
}

void AddUsage(llm::Usage* total, const llm::Usage& u) {
  total->llm_calls += u.llm_calls;
  total->cache_hits += u.cache_hits;
  total->input_tokens += u.input_tokens;
  total->output_tokens += u.output_tokens;
  total->cost_usd += u.cost_usd;
}

// What one model call should be.
struct CallSpec {
  std::string step_type;
  std::string model;
  std::string system;
  std::string prompt;
  std::optional<double> temperature;
  std::optional<int> max_tokens;
  std::vector<std::string> stop;
  bool json = false;
  // JSON schema text for the response (gemini_instructor); "" for none.
  std::string response_schema;
  // Earlier conversation turns sent before the prompt (claude_session `conversation:`).
  std::vector<llm::Message> history;
  int64_t timeout_ms = 0;
};

// Shared by the runs of one execution (the top-level pipeline and its nested pipelines).
struct RunShared {
  ExecutionResult* out = nullptr;
  size_t executed_steps = 0;
  // Set when an execution limit is hit: no loop or fallback may swallow that error.
  bool limit_hit = false;
};

// A finished call, recorded into the step afterwards (batch tasks run on other threads).
struct CallRecord {
  std::string provider;
  std::string model;
  std::string system;
  std::string prompt;
  llm::Usage usage;
  bool simulated = false;
};

// One execution. Not thread safe, with one exception: the const methods (CallModel,
// CallEnhanced, Build) only read run state, so claude_batch / parallel_claude tasks call them
// from worker threads while the run thread waits.
class Run {
 public:
  Run(const PipelineExecutor::Options& options, const ConfinedDirectory* prompts,
      const ConfinedDirectory* outputs, const Pipeline& pipeline, const json& inputs,
      const ExecuteOptions& execute, RunShared* shared)
      : options_(options),
        prompts_(prompts),
        outputs_(outputs),
        pipeline_(pipeline),
        inputs_(inputs),
        execute_(execute),
        shared_(shared) {
    templates_.inputs = inputs_.is_object() ? &inputs_ : nullptr;
    templates_.global_vars = pipeline_.global_vars.is_object() ? &pipeline_.global_vars : nullptr;
    templates_.results = &results_;
    templates_.state = &variables_;
  }

  // A nested pipeline run with inherit_context uses its parent's global_vars.
  void OverrideGlobalVars(const json* global_vars) { templates_.global_vars = global_vars; }

  // Runs the pipeline's steps; top-level runs also set the final output.
  absl::Status RunPipeline(bool top_level) {
    for (const Step& step : pipeline_.steps) {
      RETURN_IF_ERROR_(ExecuteStep(step, top_level));
    }
    return absl::OkStatus();
  }

  const json& results() const { return results_; }
  // Text of the last step (at any depth) that succeeded without being skipped.
  const std::string& last_text() const { return last_text_; }

 private:
  // Runs one step (at any depth) and records its StepResult; sub-steps of loops and nested
  // pipelines record theirs first.
  absl::Status ExecuteStep(const Step& step, bool top_level) {
    ExecutionResult& out = *shared_->out;
    StepResult sr;
    sr.name = step.path.empty() ? step.name : step.path;
    sr.type = step.type;
    sr.ignored_options = step.ignored_options;
    const absl::Time step_start = absl::Now();
    absl::Status status = CheckAlive();
    if (status.ok() && ++shared_->executed_steps > options_.max_executed_steps) {
      shared_->limit_hit = true;
      status = absl::ResourceExhaustedError(
          absl::StrCat("the execution ran more than ", options_.max_executed_steps,
                       " steps (loop iterations and nested pipelines included; "
                       "pipeline.max_executed_steps)"));
    }
    if (status.ok()) status = RunStep(step, &sr);
    sr.duration = absl::Now() - step_start;
    for (const CallRecord& call : sr_calls_) {
      AddUsage(&sr.usage, call.usage);
      sr.simulated = sr.simulated || call.simulated;
    }
    if (!sr_calls_.empty()) {
      sr.provider = sr_calls_.back().provider;
      sr.model = sr_calls_.back().model;
      if (execute_.include_prompts) {
        sr.system_prompt = sr_calls_.back().system;
        sr.prompt = sr_calls_.back().prompt;
      }
    }
    sr_calls_.clear();
    AddUsage(&out.usage, sr.usage);
    if (!status.ok()) {
      sr.status = StepStatus::kFailed;
      sr.error = status;
      sr.result = nullptr;
      sr.text.clear();
      out.steps.push_back(std::move(sr));
      return absl::Status(status.code(),
                          absl::StrCat("step \"", step.path.empty() ? step.name : step.path,
                                       "\" failed: ", status.message()));
    }
    results_[step.name] = sr.result;
    if (sr.status == StepStatus::kSucceeded) {
      last_text_ = sr.text;
      if (top_level) {
        out.final_output = sr.text;
        out.final_step = sr.name;
      }
    }
    out.steps.push_back(std::move(sr));
    return absl::OkStatus();
  }

  absl::Status CheckAlive() const {
    if (execute_.cancel != nullptr && execute_.cancel->IsCancelled()) {
      return absl::CancelledError(execute_.cancel->reason());
    }
    if (absl::Now() >= execute_.deadline) {
      return absl::DeadlineExceededError("execution deadline exceeded");
    }
    if (execute_.account != nullptr) RETURN_IF_ERROR_(execute_.account->CheckBudget());
    return absl::OkStatus();
  }

  // Errors that no retry or fallback may hide: the caller's cancellation, deadline, budget.
  bool IsFatal(const absl::Status& status) const {
    if (status.code() == absl::StatusCode::kCancelled) return true;
    if (execute_.cancel != nullptr && execute_.cancel->IsCancelled()) return true;
    if (absl::Now() >= execute_.deadline) return true;
    if (shared_->limit_hit) return true;
    if (status.code() == absl::StatusCode::kResourceExhausted &&
        absl::StartsWith(status.message(), "budget exhausted")) {
      return true;
    }
    return execute_.account != nullptr && !execute_.account->CheckBudget().ok();
  }

  absl::Status Backoff(absl::Duration delay) const {
    if (absl::Now() + delay >= execute_.deadline) {
      return absl::DeadlineExceededError("execution deadline leaves no time to retry");
    }
    Clock* clock = options_.clock;
    const absl::Time end = clock->Now() + delay;
    while (clock->Now() < end) {
      if (execute_.cancel != nullptr && execute_.cancel->IsCancelled()) {
        return absl::CancelledError(execute_.cancel->reason());
      }
      clock->SleepFor(std::min(absl::Milliseconds(50), end - clock->Now()));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> Build(const std::vector<PromptPart>& parts,
                                    const json& visible_results) const {
    PromptBuildContext ctx;
    ctx.templates = &templates_;
    ctx.results = &visible_results;
    ctx.prompts = prompts_;
    ctx.max_file_bytes = options_.max_prompt_file_bytes;
    auto prompt = BuildPrompt(parts, ctx);
    if (!prompt.ok()) return prompt.status();
    if (prompt->size() > options_.max_prompt_bytes) {
      return absl::InvalidArgumentError(absl::StrCat("rendered prompt is ", prompt->size(),
                                                     " bytes; the limit is ",
                                                     options_.max_prompt_bytes));
    }
    return prompt;
  }

  // Thread safe (reads run state only); the record is returned for the caller to keep.
  absl::StatusOr<llm::LlmResponse> CallModel(const CallSpec& spec, CallRecord* record) const {
    RETURN_IF_ERROR_(CheckAlive());
    llm::LlmRequest request;
    request.provider = !execute_.provider_override.empty() ? execute_.provider_override
                                                           : options_.provider(spec.step_type);
    request.model = !execute_.model_override.empty() ? execute_.model_override : spec.model;
    request.system = spec.system;
    request.messages = spec.history;
    request.messages.push_back(llm::Message{"user", spec.prompt});
    request.response_schema = spec.response_schema;
    request.temperature = spec.temperature;
    request.max_tokens = spec.max_tokens;
    request.stop = spec.stop;
    request.json_response = spec.json;
    request.rollout_id = execute_.rollout_id;
    request.no_cache = execute_.no_cache;
    llm::CallOptions call;
    call.deadline = execute_.deadline;
    if (spec.timeout_ms > 0) {
      call.deadline = std::min(call.deadline, absl::Now() + absl::Milliseconds(spec.timeout_ms));
    }
    call.cancel = execute_.cancel;
    call.account = execute_.account;
    record->provider = request.provider;
    record->model = request.model;
    record->system = request.system;
    record->prompt = spec.prompt;
    auto response = options_.client->Complete(request, call);
    if (!response.ok()) return response.status();
    if (!response->provider.empty()) record->provider = response->provider;
    if (!response->model.empty()) record->model = response->model;
    record->simulated = response->simulated;
    if (response->cache_hit) {
      record->usage.cache_hits = 1;
    } else {
      record->usage.llm_calls = 1;
      record->usage.input_tokens = response->input_tokens;
      record->usage.output_tokens = response->output_tokens;
      record->usage.cost_usd = response->cost_usd;
    }
    return response;
  }

  // One call, recorded on the current step.
  absl::StatusOr<llm::LlmResponse> Call(const CallSpec& spec) {
    CallRecord record;
    auto response = CallModel(spec, &record);
    sr_calls_.push_back(std::move(record));
    return response;
  }

  // EnhancedClaudeProvider's retry: claude_options.retry_config {max_retries, retry_on,
  // backoff_strategy}; thread safe like CallModel.
  absl::StatusOr<llm::LlmResponse> CallEnhanced(const CallSpec& spec, const json& options,
                                                std::vector<CallRecord>* records,
                                                json* retry_info) const {
    const json retry = options.value("retry_config", json::object());
    const int64_t max_retries = retry.is_object() ? IntOption(retry, "max_retries").value_or(0) : 0;
    if (max_retries <= 0) {
      CallRecord record;
      auto response = CallModel(spec, &record);
      records->push_back(std::move(record));
      return response;
    }
    for (int64_t attempt = 1;; ++attempt) {
      CallRecord record;
      auto response = CallModel(spec, &record);
      records->push_back(std::move(record));
      if (response.ok()) {
        *retry_info =
            json{{"attempts_made", attempt}, {"max_retries", max_retries}, {"final_attempt", true}};
        return response;
      }
      if (IsFatal(response.status())) return response.status();
      if (attempt >= max_retries) {
        return absl::Status(
            response.status().code(),
            absl::StrCat(response.status().message(), " (after ", max_retries, " retries)"));
      }
      if (!MatchesAny(ReasonText(response.status()), retry.value("retry_on", json::array()))) {
        return response.status();
      }
      const std::string strategy = StringOption(retry, "backoff_strategy");
      int64_t delay_ms = 1000;
      if (strategy == "linear" || strategy.empty() || strategy == "exponential") {
        delay_ms = (strategy == "linear")
                       ? 1000 * attempt
                       : static_cast<int64_t>(std::llround(1000 * std::pow(2.0, attempt - 1)));
      }
      RETURN_IF_ERROR_(Backoff(absl::Milliseconds(delay_ms)));
    }
  }

  absl::StatusOr<llm::LlmResponse> CallEnhancedHere(const CallSpec& spec, const json& options,
                                                    json* retry_info) {
    return CallEnhanced(spec, options, &sr_calls_, retry_info);
  }

  // The step map interpolated like pipeline_ex does before running a step (prompt parts are
  // interpolated separately when the prompt is built).
  absl::StatusOr<json> InterpolatedConfig(const Step& step) const {
    json config = step.config;
    // Sub-steps and inline child pipelines are interpolated when they run, in their own scope.
    for (const char* key : {"prompt", "tasks", "parallel_tasks", "steps", "pipeline", "inputs"}) {
      config.erase(key);
    }
    return InterpolateValue(config, templates_);
  }

  absl::StatusOr<std::vector<PromptPart>> PromptFor(const Step& step) const {
    if (execute_.program == nullptr) return step.prompt;
    auto it = execute_.program->steps.find(step.path.empty() ? step.name : step.path);
    if (it == execute_.program->steps.end()) return step.prompt;
    return ApplyProgram(step, it->second);
  }

  static json ClaudeOptionsFrom(const json& config) {
    auto it = config.find("claude_options");
    if (it == config.end() || !it->is_object()) return json::object();
    return *it;
  }

  CallSpec ClaudeSpec(const Step& step, const json& options, std::string prompt) const {
    CallSpec spec;
    spec.step_type = step.type;
    spec.model = StringOption(options, "model");
    if (spec.model.empty()) spec.model = step.model;
    spec.system = SystemPrompt(options);
    spec.prompt = std::move(prompt);
    spec.temperature = NumberOption(options, "temperature");
    if (auto max_tokens = IntOption(options, "max_tokens")) {
      spec.max_tokens = static_cast<int>(*max_tokens);
    }
    spec.timeout_ms = IntOption(options, "timeout_ms").value_or(0);
    spec.json = step.json_output;
    return spec;
  }

  // The live Claude result map shape.
  static json ClaudeResult(const llm::LlmResponse& response, const std::string& model) {
    return json{{"text", response.text},
                {"success", true},
                {"cost", response.cost_usd},
                {"model", response.model.empty() ? model : response.model}};
  }

  static absl::Status CheckNotEmpty(const llm::LlmResponse& response) {
    if (absl::StripAsciiWhitespace(response.text).empty()) {
      return absl::UnavailableError("Empty response from Claude");
    }
    return absl::OkStatus();
  }

  void MergeJson(const Step& step, StepResult* sr, const std::string& text) {
    if (!step.json_output) return;
    sr->parsed_json = ParseJsonResponse(text);
    if (sr->parsed_json.has_value() && sr->parsed_json->is_object() && sr->result.is_object()) {
      for (auto it = sr->parsed_json->begin(); it != sr->parsed_json->end(); ++it) {
        if (!ReservedResultKey(it.key()) && !sr->result.contains(it.key())) {
          sr->result[it.key()] = it.value();
        }
      }
    }
  }

  absl::Status RunStep(const Step& step, StepResult* sr) {
    auto config = InterpolatedConfig(step);
    if (!config.ok()) return config.status();
    // A while_loop's `condition` is its loop condition, not a skip condition.
    const json condition =
        step.kind == StepKind::kWhileLoop ? json() : config->value("condition", json());
    if (!condition.is_null()) {
      auto met = EvaluateCondition(condition, results_);
      if (!met.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("condition: ", met.status().message()));
      }
      if (!*met) {
        sr->status = StepStatus::kSkipped;
        sr->skip_reason = absl::StrCat("Condition not met: ", ConditionText(step.condition));
        sr->result = json{{"success", true}, {"skipped", true}, {"reason", sr->skip_reason}};
        return absl::OkStatus();
      }
    }
    absl::Status status;
    switch (step.kind) {
      case StepKind::kClaude:
        status = RunClaude(step, *config, sr);
        break;
      case StepKind::kGemini:
        status = RunGemini(step, *config, sr);
        break;
      case StepKind::kClaudeSmart:
      case StepKind::kClaudeSession:
      case StepKind::kClaudeExtract:
        status = RunEnhanced(step, *config, sr);
        break;
      case StepKind::kClaudeRobust:
        status = RunRobust(step, *config, sr);
        break;
      case StepKind::kClaudeBatch:
        status = RunBatch(step, *config, sr);
        break;
      case StepKind::kParallelClaude:
        status = RunParallel(step, sr);
        break;
      case StepKind::kSetVariable:
        status = RunSetVariable(*config, sr);
        break;
      case StepKind::kGeminiInstructor:
        status = RunInstructor(step, *config, sr);
        break;
      case StepKind::kForLoop:
        status = RunForLoop(step, *config, sr);
        break;
      case StepKind::kWhileLoop:
        status = RunWhileLoop(step, *config, sr);
        break;
      case StepKind::kNestedPipeline:
        status = RunNested(step, *config, sr);
        break;
      case StepKind::kDataTransform:
        status = RunDataTransform(step, *config, sr);
        break;
      case StepKind::kFileOps: {
        auto result = RunFileOps(*config, outputs_, options_.max_prompt_file_bytes);
        if (!result.ok()) return result.status();
        sr->result = std::move(*result);
        break;
      }
    }
    RETURN_IF_ERROR_(status);
    return WriteOutput(step, *config, sr);
  }

  absl::Status WriteOutput(const Step& step, const json& config, StepResult* sr) {
    if (!step.output_to_file.has_value()) return absl::OkStatus();
    if (outputs_ == nullptr) {
      if (std::find(sr->ignored_options.begin(), sr->ignored_options.end(), "output_to_file") ==
          sr->ignored_options.end()) {
        sr->ignored_options.push_back("output_to_file");
        std::sort(sr->ignored_options.begin(), sr->ignored_options.end());
      }
      return absl::OkStatus();
    }
    auto path = ElixirToString(config.value("output_to_file", json()));
    if (!path.ok()) return path.status();
    const std::string content =
        sr->result.is_string() ? sr->result.get<std::string>() : JasonEncode(sr->result, true);
    absl::Status s = outputs_->Write(*path, content);
    if (!s.ok()) {
      return absl::Status(s.code(), absl::StrCat("output_to_file: ", s.message()));
    }
    return absl::OkStatus();
  }

  absl::Status RunClaude(const Step& step, const json& config, StepResult* sr) {
    auto parts = PromptFor(step);
    if (!parts.ok()) return parts.status();
    auto prompt = Build(*parts, results_);
    if (!prompt.ok()) return prompt.status();
    const json options = ClaudeOptionsFrom(config);
    CallSpec spec = ClaudeSpec(step, options, std::move(*prompt));
    auto response = Call(spec);
    if (!response.ok()) return response.status();
    RETURN_IF_ERROR_(CheckNotEmpty(*response));
    sr->text = response->text;
    sr->result = ClaudeResult(*response, spec.model);
    MergeJson(step, sr, sr->text);
    return absl::OkStatus();
  }

  absl::Status RunGemini(const Step& step, const json& config, StepResult* sr) {
    auto parts = PromptFor(step);
    if (!parts.ok()) return parts.status();
    auto prompt = Build(*parts, results_);
    if (!prompt.ok()) return prompt.status();
    CallSpec spec;
    spec.step_type = step.type;
    spec.model = StringOption(config, "model");
    spec.system = StringOption(config, "system_instruction");
    spec.prompt = std::move(*prompt);
    const json budget = config.value("token_budget", json::object());
    if (budget.is_object()) {
      spec.temperature = NumberOption(budget, "temperature");
      if (auto max_tokens = IntOption(budget, "max_output_tokens")) {
        spec.max_tokens = static_cast<int>(*max_tokens);
      }
    }
    const json stop = config.value("stop_sequences", json());
    if (stop.is_array()) {
      for (const json& s : stop) {
        if (s.is_string()) spec.stop.push_back(s.get<std::string>());
      }
    }
    spec.timeout_ms = IntOption(config, "timeout_ms").value_or(0);
    spec.json = step.json_output;
    auto response = Call(spec);
    if (!response.ok()) return response.status();
    sr->text = response->text;
    sr->result = json{{"text", response->text},
                      {"success", true},
                      {"cost", response->cost_usd},
                      {"model", response->model.empty() ? spec.model : response->model},
                      {"tokens",
                       {{"input", response->input_tokens},
                        {"output", response->output_tokens},
                        {"total", response->input_tokens + response->output_tokens}}}};
    MergeJson(step, sr, sr->text);
    return absl::OkStatus();
  }

  // claude_smart, claude_session, claude_extract: preset-merged options, the enhanced
  // provider's retries, and each type's result decoration.
  absl::Status RunEnhanced(const Step& step, const json& config, StepResult* sr) {
    const std::string preset = EffectivePreset(pipeline_, step);
    json options = MergePreset(preset, ClaudeOptionsFrom(config));
    if (step.kind == StepKind::kClaudeSmart) options = ApplyPresetOptimizations(preset, options);
    auto parts = PromptFor(step);
    if (!parts.ok()) return parts.status();
    auto prompt = Build(*parts, results_);
    if (!prompt.ok()) return prompt.status();
    CallSpec spec = ClaudeSpec(step, options, std::move(*prompt));
    for (const ConversationTurn& turn : step.conversation) {
      auto content = InterpolateToText(turn.content, templates_);
      if (!content.ok()) return content.status();
      spec.history.push_back(llm::Message{turn.role, std::move(*content)});
    }
    json retry_info;
    auto response = CallEnhancedHere(spec, options, &retry_info);
    if (!response.ok()) return response.status();
    RETURN_IF_ERROR_(CheckNotEmpty(*response));
    json result = ClaudeResult(*response, spec.model);
    if (!retry_info.is_null()) result["retry_info"] = retry_info;
    if (step.kind == StepKind::kClaudeSmart) {
      result["claude_smart_metadata"] = {
          {"preset_applied", preset},
          {"environment_aware", ElixirTruthy(config.value("environment_aware", json()))},
          {"optimization_applied", true}};
    } else if (step.kind == StepKind::kClaudeSession) {
      const json session = config.value("session_config", json::object());
      const json s = session.is_object() ? session : json::object();
      std::string name = StringOption(s, "session_name");
      if (name.empty()) name = step.name;
      result["session_id"] = name;
      auto value_or = [&](const char* key, json fallback) {
        auto it = s.find(key);
        return (it == s.end() || it->is_null() || *it == false) ? fallback : *it;
      };
      result["claude_session_metadata"] = {
          {"session_id", name},
          {"session_name", name},
          {"session_persisted", value_or("persist", false)},
          {"checkpoint_frequency", value_or("checkpoint_frequency", 5)},
          {"continue_on_restart", value_or("continue_on_restart", false)}};
    } else if (step.kind == StepKind::kClaudeExtract) {
      const json extraction = config.value("extraction_config", json::object());
      auto processed =
          ApplyExtraction(response->text, extraction.is_object() ? extraction : json::object());
      if (!processed.ok()) {
        return absl::InternalError(
            absl::StrCat("Content extraction failed: ", processed.status().message()));
      }
      result["text"] = *processed;
      result["extraction_applied"] = true;
      if (extraction.is_object() && ElixirTruthy(extraction.value("include_metadata", json()))) {
        result["extraction_metadata"] =
            ExtractionMetadata(response->text, *processed, extraction, step.name);
      }
    }
    sr->text = result["text"].get<std::string>();
    sr->result = std::move(result);
    MergeJson(step, sr, sr->text);
    return absl::OkStatus();
  }

  absl::Status RunRobust(const Step& step, const json& config, StepResult* sr) {
    const std::string preset = EffectivePreset(pipeline_, step);
    const json options = MergePreset(preset, ClaudeOptionsFrom(config));
    json retry = json{{"max_retries", 3},
                      {"backoff_strategy", "exponential"},
                      {"base_delay_ms", 1000},
                      {"retry_conditions", {"timeout", "rate_limit", "temporary_error"}},
                      {"fallback_action", "graceful_degradation"}};
    const json own = config.value("retry_config", json::object());
    if (own.is_object()) {
      for (auto it = own.begin(); it != own.end(); ++it) retry[it.key()] = it.value();
    }
    if (!retry["max_retries"].is_number_integer() || retry["max_retries"].get<int64_t>() < 0) {
      return absl::InvalidArgumentError("max_retries must be a non-negative integer");
    }
    if (!retry["base_delay_ms"].is_number_integer() || retry["base_delay_ms"].get<int64_t>() < 0) {
      return absl::InvalidArgumentError("base_delay_ms must be a non-negative integer");
    }
    const std::string strategy = StringOption(retry, "backoff_strategy");
    if (strategy != "linear" && strategy != "exponential" && strategy != "fixed") {
      return absl::InvalidArgumentError(
          "backoff_strategy must be one of: linear, exponential, fixed");
    }
    if (!retry["retry_conditions"].is_array()) {
      return absl::InvalidArgumentError("retry_conditions must be a list");
    }
    auto parts = PromptFor(step);
    if (!parts.ok()) return parts.status();
    auto prompt = Build(*parts, results_);
    if (!prompt.ok()) return prompt.status();
    CallSpec spec = ClaudeSpec(step, options, std::move(*prompt));
    const int64_t max_retries = retry["max_retries"].get<int64_t>();
    const int64_t base_delay = retry["base_delay_ms"].get<int64_t>();
    json error_history = json::array();
    absl::Status last;
    for (int64_t attempt = 0;; ++attempt) {
      json retry_info;
      auto response = CallEnhancedHere(spec, options, &retry_info);
      if (response.ok() && CheckNotEmpty(*response).ok()) {
        json result = ClaudeResult(*response, spec.model);
        if (!retry_info.is_null()) result["retry_info"] = retry_info;
        result["robustness_metadata"] = {{"attempt_number", attempt + 1},
                                         {"total_attempts", attempt + 1},
                                         {"error_history", error_history},
                                         {"retry_strategy_used", strategy},
                                         {"recovery_successful", attempt > 0}};
        result["claude_robust_metadata"] = {
            {"step_name", step.name},
            {"retry_config_used", retry},
            {"robustness_applied", true},
            {"error_recovery_enabled", true},
            {"fallback_configured", retry.contains("fallback_action")},
            {"circuit_breaker_active", false}};
        sr->text = response->text;
        sr->result = std::move(result);
        MergeJson(step, sr, sr->text);
        return absl::OkStatus();
      }
      last = response.ok() ? CheckNotEmpty(*response) : response.status();
      if (IsFatal(last)) return last;
      error_history.push_back({{"attempt", attempt + 1}, {"error", std::string(last.message())}});
      if (attempt >= max_retries) break;
      if (!MatchesAny(ReasonText(last), retry["retry_conditions"])) break;
      int64_t delay = base_delay;
      if (strategy == "exponential") {
        delay = static_cast<int64_t>(std::llround(base_delay * std::pow(2.0, attempt)));
      } else if (strategy == "linear") {
        delay = base_delay * (attempt + 1);
      }
      RETURN_IF_ERROR_(Backoff(absl::Milliseconds(delay)));
    }
    return RobustFallback(step, retry, last, sr);
  }

  absl::Status RobustFallback(const Step& step, const json& retry, const absl::Status& error,
                              StepResult* sr) {
    const std::string action = StringOption(retry, "fallback_action");
    const std::string reason(error.message());
    json result;
    if (action == "use_cached_response") {
      return absl::Status(error.code(),
                          absl::StrCat("Robust execution failed: ", reason,
                                       ". Fallback also failed: No cached response available"));
    }
    if (action == "simplified_prompt") {
      CallSpec spec;
      spec.step_type = step.type;
      spec.prompt = absl::StrCat("Provide a brief, simple response for: ", step.name);
      spec.temperature = 0.3;
      auto response = Call(spec);
      if (!response.ok()) {
        return absl::Status(response.status().code(),
                            absl::StrCat("Robust execution failed: ", reason,
                                         ". Fallback also failed: Simplified fallback also "
                                         "failed: ",
                                         response.status().message()));
      }
      result = ClaudeResult(*response, spec.model);
      result["fallback_type"] = "simplified_prompt";
      result["original_error"] = reason;
      result["simplified_execution"] = true;
    } else if (action == "emergency_response") {
      result = json{
          {"success", true},
          {"text", absl::StrCat("EMERGENCY RESPONSE MODE\n\nThe Claude Robust step '", step.name,
                                "' has activated emergency response mode due to:\n", reason,
                                "\n\nThis is a minimal safe response to maintain "
                                "system stability.\nManual intervention may be "
                                "required.\n")},
          {"emergency_mode", true},
          {"original_error", reason},
          {"fallback_type", "emergency_response"},
          {"requires_attention", true},
          {"cost", 0.0},
          {"duration_ms", 10}};
    } else {
      result = json{{"success", true},
                    {"text", absl::StrCat("This Claude Robust step encountered an error but has "
                                          "gracefully degraded to provide a basic response.\n\n"
                                          "Original error: ",
                                          reason, "\nStep: ", step.name,
                                          "\nFallback mode: Graceful degradation\n\nThe system "
                                          "has maintained stability despite the error "
                                          "condition.\n")},
                    {"degraded_mode", true},
                    {"original_error", reason},
                    {"fallback_type", "graceful_degradation"},
                    {"cost", 0.0},
                    {"duration_ms", 100}};
    }
    sr->text = result["text"].get<std::string>();
    sr->result = std::move(result);
    return absl::OkStatus();
  }

  // Runs `count` jobs on up to `parallel` threads; `job(i)` must be thread safe.
  void RunConcurrently(size_t count, int parallel, const std::function<void(size_t)>& job) {
    const size_t workers =
        std::max<size_t>(1, std::min<size_t>(count, static_cast<size_t>(std::max(1, parallel))));
    if (workers == 1) {
      for (size_t i = 0; i < count; ++i) job(i);
      return;
    }
    std::atomic<size_t> next{0};
    std::vector<std::thread> threads;
    threads.reserve(workers);
    for (size_t w = 0; w < workers; ++w) {
      threads.emplace_back([&] {
        for (size_t i = next++; i < count; i = next++) job(i);
      });
    }
    for (auto& t : threads) t.join();
  }

  absl::Status RunBatch(const Step& step, const json& config, StepResult* sr) {
    const json batch = config.value("batch_config", json::object());
    const json b = batch.is_object() ? batch : json::object();
    const int64_t max_parallel = IntOption(b, "max_parallel").value_or(3);
    const int64_t timeout_per_task = IntOption(b, "timeout_per_task").value_or(60000);
    bool consolidate = true;
    if (auto it = b.find("consolidate_results"); it != b.end() && it->is_boolean()) {
      consolidate = it->get<bool>();
    }
    if (max_parallel <= 0)
      return absl::InvalidArgumentError("max_parallel must be a positive integer");
    if (timeout_per_task <= 0) {
      return absl::InvalidArgumentError("timeout_per_task must be a positive integer");
    }
    const std::string preset = EffectivePreset(pipeline_, step);
    const json options = MergePreset(preset, ClaudeOptionsFrom(config));
    const json empty_results = json::object();

    struct TaskOutcome {
      absl::Status status;
      json result;
      std::vector<CallRecord> calls;
      bool timed_out = false;
    };
    std::vector<TaskOutcome> outcomes(step.tasks.size());
    RunConcurrently(
        step.tasks.size(),
        static_cast<int>(std::min<int64_t>(max_parallel, options_.max_parallel_tasks)),
        [&](size_t i) {
          TaskOutcome& out = outcomes[i];
          auto prompt = Build(step.tasks[i].prompt, empty_results);
          if (!prompt.ok()) {
            out.status = prompt.status();
            return;
          }
          CallSpec spec = ClaudeSpec(step, options, std::move(*prompt));
          spec.timeout_ms =
              spec.timeout_ms > 0 ? std::min(spec.timeout_ms, timeout_per_task) : timeout_per_task;
          const absl::Time started = absl::Now();
          json retry_info;
          auto response = CallEnhanced(spec, options, &out.calls, &retry_info);
          if (!response.ok()) {
            out.status = response.status();
            out.timed_out = response.status().code() == absl::StatusCode::kDeadlineExceeded &&
                            absl::Now() - started >= absl::Milliseconds(timeout_per_task);
            return;
          }
          out.result = ClaudeResult(*response, spec.model);
          if (!retry_info.is_null()) out.result["retry_info"] = retry_info;
        });
    json batch_results = json::array();
    int64_t successes = 0, errors = 0, timeouts = 0;
    std::vector<std::string> success_texts, failure_texts;
    json files = json::array();
    for (size_t i = 0; i < outcomes.size(); ++i) {
      TaskOutcome& out = outcomes[i];
      for (CallRecord& c : out.calls) sr_calls_.push_back(std::move(c));
      if (!out.status.ok() && IsFatal(out.status)) return out.status;
      const BatchTask& task = step.tasks[i];
      const json file = task.file.has_value() ? json(*task.file) : json();
      const std::string file_text = task.file.value_or("N/A");
      if (task.file.has_value()) {
        bool seen = false;
        for (const json& f : files) seen = seen || f == *task.file;
        if (!seen) files.push_back(*task.file);
      }
      if (out.status.ok()) {
        ++successes;
        batch_results.push_back({{"task_id", task.task_id},
                                 {"status", "success"},
                                 {"result", out.result},
                                 {"file", file}});
        success_texts.push_back(absl::StrCat("## Task: ", task.task_id, "\n**File**: ", file_text,
                                             "\n**Status**: Success\n\n",
                                             out.result["text"].get<std::string>(), "\n"));
      } else {
        const std::string status = out.timed_out ? "timeout" : "error";
        const std::string error =
            out.timed_out ? absl::StrCat("Task timed out after ", timeout_per_task, "ms")
                          : std::string(out.status.message());
        (out.timed_out ? timeouts : errors)++;
        batch_results.push_back(
            {{"task_id", task.task_id}, {"status", status}, {"error", error}, {"file", file}});
        failure_texts.push_back(absl::StrCat("## Task: ", task.task_id, "\n**File**: ", file_text,
                                             "\n**Status**: ", absl::AsciiStrToUpper(status),
                                             "\n**Error**: ", error, "\n"));
      }
    }
    const int64_t total = static_cast<int64_t>(outcomes.size());
    json result = {{"success", true},
                   {"batch_processed", true},
                   {"total_tasks", total},
                   {"successful_tasks", successes},
                   {"failed_tasks", total - successes},
                   {"batch_results", batch_results}};
    if (consolidate) {
      std::vector<std::string> all = success_texts;
      all.insert(all.end(), failure_texts.begin(), failure_texts.end());
      result["text"] = absl::StrCat("# Batch Processing Results\n\n**Total Tasks**: ", total,
                                    "\n**Successful**: ", success_texts.size(),
                                    "\n**Failed**: ", failure_texts.size(), "\n\n",
                                    absl::StrJoin(all, "\n\n---\n\n"), "\n");
      result["claude_batch_metadata"] = {
          {"step_name", step.name},
          {"total_tasks", total},
          {"task_breakdown",
           {{"successful", successes}, {"failed", errors}, {"timeout", timeouts}}},
          {"files_processed", files}};
      sr->text = result["text"].get<std::string>();
    }
    result["performance_statistics"] = {{"total_execution_time_ms", 0},
                                        {"average_task_time_ms", 0},
                                        {"min_task_time_ms", 0},
                                        {"max_task_time_ms", 0}};
    sr->result = std::move(result);
    return absl::OkStatus();
  }

  absl::Status RunParallel(const Step& step, StepResult* sr) {
    struct TaskOutcome {
      absl::Status status;
      json result;
      CallRecord call;
    };
    std::vector<TaskOutcome> outcomes(step.parallel_tasks.size());
    RunConcurrently(step.parallel_tasks.size(), options_.max_parallel_tasks, [&](size_t i) {
      const ParallelTask& task = step.parallel_tasks[i];
      TaskOutcome& out = outcomes[i];
      auto options = InterpolateValue(task.claude_options, templates_);
      if (!options.ok()) {
        out.status = options.status();
        return;
      }
      auto prompt = Build(task.prompt, results_);
      if (!prompt.ok()) {
        out.status = prompt.status();
        return;
      }
      CallSpec spec = ClaudeSpec(step, *options, std::move(*prompt));
      spec.json = false;
      auto response = CallModel(spec, &out.call);
      if (response.ok()) out.status = CheckNotEmpty(*response);
      if (!response.ok()) {
        out.status = response.status();
        return;
      }
      out.result = ClaudeResult(*response, spec.model);
    });
    json individual = json::object();
    std::vector<std::string> combined;
    for (size_t i = 0; i < outcomes.size(); ++i) {
      TaskOutcome& out = outcomes[i];
      if (!out.call.provider.empty() || !out.call.prompt.empty()) sr_calls_.push_back(out.call);
      if (!out.status.ok() && IsFatal(out.status)) return out.status;
      const std::string& id = step.parallel_tasks[i].id;
      if (out.status.ok()) {
        individual[id] = out.result;
        combined.push_back(
            absl::StrCat("\n===[", id, "]===\n", out.result["text"].get<std::string>()));
      } else {
        individual[id] = {{"success", false}, {"error", std::string(out.status.message())}};
        combined.push_back(absl::StrCat("\n===[", id, "]===\nerror: ", out.status.message()));
      }
    }
    sr->text = absl::StrJoin(combined, "\n");
    sr->result = {{"combined_results", sr->text}, {"individual_results", individual}};
    return absl::OkStatus();
  }

  // The loop context visible to sub-steps: results["loop"] (conditions, previous_response)
  // and {{loop.x}} templates. `context` null restores "outside any loop".
  void SetLoopContext(json context) {
    loop_context_ = std::move(context);
    if (loop_context_.is_null()) {
      results_.erase("loop");
      templates_.loop = nullptr;
    } else {
      results_["loop"] = loop_context_;
      templates_.loop = &loop_context_;
    }
  }

  absl::Status RunSubSteps(const std::vector<Step>& steps) {
    for (const Step& sub : steps) RETURN_IF_ERROR_(ExecuteStep(sub, /*top_level=*/false));
    return absl::OkStatus();
  }

  absl::Status LoopLimit(size_t count) {
    shared_->limit_hit = true;
    return absl::InvalidArgumentError(
        absl::StrCat("data_source has ", count, " items; a loop runs at most ",
                     options_.max_loop_iterations, " iterations (pipeline.max_loop_iterations)"));
  }

  // Step.Loop's data_source: "previous_response[:field]" (results["previous_response"]),
  // "<step>:<field.path>" (the loop variable <step> first, then the step's result), or
  // "<name>" (a variable, then a step result).
  absl::StatusOr<json> ResolveLoopSource(const std::string& source) const {
    const size_t colon = source.find(':');
    const std::string head = source.substr(0, colon);
    const std::string field = colon == std::string::npos ? "" : source.substr(colon + 1);
    if (head == "previous_response") {
      auto it = results_.find("previous_response");
      if (it == results_.end()) return absl::NotFoundError("No previous_response found");
      if (colon == std::string::npos) return *it;
      json v = DataField(*it, field);
      if (v.is_null())
        return absl::NotFoundError(absl::StrCat("Data source field not found: ", field));
      return v;
    }
    if (colon != std::string::npos) {
      if (auto loop = results_.find("loop"); loop != results_.end() && loop->is_object()) {
        if (auto var = loop->find(head); var != loop->end() && !var->is_null()) {
          json v = DataField(*var, field);
          if (v.is_null()) {
            return absl::NotFoundError(absl::StrCat("Field not found in loop context: ", field));
          }
          return v;
        }
      }
      auto it = results_.find(head);
      if (it == results_.end() || it->is_null()) {
        return absl::NotFoundError(absl::StrCat("Step result not found: ", head));
      }
      json v = DataField(*it, field);
      if (v.is_null()) {
        return absl::NotFoundError(absl::StrCat("Field not found in step result: ", field));
      }
      return v;
    }
    json var = GetVariable(variables_, head);
    if (!var.is_null()) return var;
    auto it = results_.find(head);
    if (it == results_.end() || it->is_null()) {
      return absl::NotFoundError(absl::StrCat("Step result not found: ", head));
    }
    return *it;
  }

  absl::StatusOr<bool> LoopControl(const json& config, const char* key) const {
    const json condition = config.value(key, json());
    if (condition.is_null()) return false;
    auto met = EvaluateCondition(condition, results_);
    return met.ok() && *met;  // pipeline_ex treats a failing control condition as false
  }

  absl::Status RunForLoop(const Step& step, const json& config, StepResult* sr) {
    const std::string iterator = StringOption(config, "iterator");
    auto data = ResolveLoopSource(StringOption(config, "data_source"));
    if (!data.ok()) {
      return absl::Status(data.status().code(),
                          absl::StrCat("data_source: ", data.status().message()));
    }
    if (!data->is_array()) {
      return absl::InvalidArgumentError(absl::StrCat("Data source must resolve to a list, got: ",
                                                     JasonEncode(*data, false).substr(0, 200)));
    }
    const size_t total = data->size();
    if (total > options_.max_loop_iterations) return LoopLimit(total);
    const bool break_on_error = config.value("break_on_error", json(true)) != false;
    const json parent = loop_context_;
    json iterations = json::array();
    bool success = true;
    int64_t completed = 0;
    last_text_.clear();
    for (size_t i = 0; i < total; ++i) {
      json context = {{iterator, (*data)[i]},
                      {"index", static_cast<int64_t>(i)},
                      {"total", static_cast<int64_t>(total)},
                      {"first", i == 0},
                      {"last", i + 1 == total},
                      {"level", parent.is_object() ? parent.value("level", 0) + 1 : 0}};
      if (parent.is_object()) context["parent"] = parent;
      SetLoopContext(std::move(context));
      absl::Status status = CheckAlive();
      if (status.ok()) status = RunSubSteps(step.sub_steps);
      if (!status.ok()) {
        if (IsFatal(status)) {
          SetLoopContext(parent);
          return status;
        }
        iterations.push_back({{"index", static_cast<int64_t>(i)},
                              {"item", (*data)[i]},
                              {"success", false},
                              {"error", std::string(status.message())}});
        success = false;
        if (break_on_error) break;
        continue;
      }
      json sub_results = json::object();
      for (const Step& sub : step.sub_steps)
        sub_results[sub.name] = results_.value(sub.name, json());
      iterations.push_back({{"index", static_cast<int64_t>(i)},
                            {"item", (*data)[i]},
                            {"success", true},
                            {"results", std::move(sub_results)}});
      ++completed;
      auto stop = LoopControl(config, "break_condition");
      if (stop.ok() && *stop) break;
    }
    SetLoopContext(parent);
    sr->text = last_text_;
    sr->result = {{"iterations", std::move(iterations)},
                  {"success", success},
                  {"total_items", static_cast<int64_t>(total)},
                  {"completed_items", completed}};
    return absl::OkStatus();
  }

  absl::Status RunWhileLoop(const Step& step, const json& config, StepResult* sr) {
    const json condition = config.value("condition", json());
    const int64_t max_iterations = IntOption(config, "max_iterations").value_or(100);
    if (max_iterations > static_cast<int64_t>(options_.max_loop_iterations)) {
      return LoopLimit(static_cast<size_t>(max_iterations));
    }
    const json parent = loop_context_;
    last_text_.clear();
    for (int64_t count = 0;; ++count) {
      if (count >= max_iterations) {
        sr->result = {{"success", false},
                      {"iterations", count},
                      {"max_iterations_reached", true},
                      {"reason", "Maximum iterations exceeded"}};
        break;
      }
      auto met = EvaluateCondition(condition, results_);
      if (!met.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("While loop condition evaluation failed: ", met.status().message()));
      }
      if (!*met) {
        sr->result = {{"success", true}, {"iterations", count}, {"condition_met", false}};
        break;
      }
      SetLoopContext(json{{"iteration", count}, {"count", count}});
      absl::Status status = CheckAlive();
      if (status.ok()) status = RunSubSteps(step.sub_steps);
      SetLoopContext(parent);
      if (!status.ok()) {
        if (IsFatal(status)) return status;
        return absl::Status(status.code(), absl::StrCat("While loop failed at iteration ",
                                                        count + 1, ": ", status.message()));
      }
    }
    sr->text = last_text_;
    return absl::OkStatus();
  }

  // type: pipeline. The child runs with its own results and variables; inputs are resolved
  // against this run keeping types for whole-template values (Context.Nested).
  absl::Status RunNested(const Step& step, const json& config, StepResult* sr) {
    const json settings = config.value("config", json::object());
    const bool inherit = settings.is_object() && settings.value("inherit_context", false) == true;
    json inputs = json::object();
    const json raw_inputs = step.config.value("inputs", json::object());
    if (raw_inputs.is_object() && !raw_inputs.empty()) {
      static const json kNoInputs = json::object();
      TemplateContext typed = templates_;
      if (typed.inputs == nullptr) typed.inputs = &kNoInputs;  // whole templates keep types
      auto resolved = InterpolateValue(raw_inputs, typed);
      if (!resolved.ok()) return resolved.status();
      inputs = std::move(*resolved);
    } else if (inherit && inputs_.is_object()) {
      inputs = inputs_;
    }
    const Pipeline& child = *step.child;
    Run run(options_, prompts_, outputs_, child, inputs, execute_, shared_);
    if (inherit && templates_.global_vars != nullptr)
      run.OverrideGlobalVars(templates_.global_vars);
    absl::Status status = run.RunPipeline(/*top_level=*/false);
    if (!status.ok()) {
      if (IsFatal(status)) return status;
      return absl::Status(status.code(), absl::StrCat("Nested pipeline '", child.name,
                                                      "' failed: ", status.message()));
    }
    const json& child_results = run.results();
    json extracted = json::object();
    const json outputs = config.value("outputs", json());
    if (!outputs.is_array() || outputs.empty()) {
      for (auto it = child_results.begin(); it != child_results.end(); ++it) {
        const json& r = it.value();
        extracted[it.key()] = (r.is_object() && r.contains("result")) ? r["result"] : r;
      }
    } else {
      for (const json& output : outputs) {
        if (output.is_string()) {
          const std::string name = output.get<std::string>();
          auto it = child_results.find(name);
          if (it == child_results.end() || it->is_null()) {
            return absl::NotFoundError(absl::StrCat("Output '", name, "' not found in results"));
          }
          extracted[name] = *it;
          continue;
        }
        const std::string path = output.value("path", "");
        const json as = output.value("as", json());
        const json* at = &child_results;
        for (absl::string_view key : absl::StrSplit(path, '.')) {
          auto it = at->is_object() ? at->find(std::string(key)) : at->end();
          if (!at->is_object() || it == at->end() || it->is_null()) {
            return absl::NotFoundError(absl::StrCat("Path '", path, "' not found in results"));
          }
          at = &*it;
        }
        extracted[as.is_string() ? as.get<std::string>() : path] = *at;
      }
    }
    sr->text = run.last_text();
    sr->result =
        raw_inputs.is_object() && !raw_inputs.empty() ? json{{"result", extracted}} : extracted;
    return absl::OkStatus();
  }

  // data_transform's input_source / right_source: "previous_response:<step>[:<path>]",
  // "context:<inputs|global_vars|results>[.path]", or "<name>" (a variable, then a step).
  json ResolveDataSource(const std::string& source) const {
    const std::vector<std::string> parts = absl::StrSplit(source, absl::MaxSplits(':', 2));
    if (parts.size() >= 2 && parts[0] == "previous_response") {
      auto it = results_.find(parts[1]);
      if (it == results_.end()) return nullptr;
      return parts.size() == 3 ? DataField(*it, parts[2]) : *it;
    }
    if (parts.size() == 2 && parts[0] == "context") {
      json context = {{"results", results_},
                      {"inputs", inputs_.is_object() ? inputs_ : json::object()},
                      {"global_vars", templates_.global_vars != nullptr ? *templates_.global_vars
                                                                        : json::object()}};
      return DataField(context, parts[1]);
    }
    if (parts.size() != 1) return nullptr;
    json var = GetVariable(variables_, source);
    if (!var.is_null()) return var;
    auto it = results_.find(source);
    return it == results_.end() ? json() : *it;
  }

  absl::Status RunDataTransform(const Step& step, const json& config, StepResult* sr) {
    const std::string source = StringOption(config, "input_source");
    const json input = ResolveDataSource(source);
    if (input.is_null()) {
      return absl::NotFoundError(absl::StrCat("Input source '", source, "' not found"));
    }
    const json operations = config.value("operations", json::array());
    auto data = ApplyDataOperations(input, operations,
                                    [this](const std::string& s) { return ResolveDataSource(s); });
    if (!data.ok()) return data.status();
    const std::string format = StringOption(config, "output_format");
    if (format == "json") {
      *data = JasonEncode(*data, false);
    } else if (format == "string") {
      auto text = ElixirToString(*data);
      if (!text.ok()) return text.status();
      *data = *text;
    }
    std::string field = StringOption(config, "output_field");
    if (field.empty()) field = step.name;
    // (operator[] on a const json without the key is undefined: the fuzzer found it.)
    const int64_t operation_count =
        static_cast<int64_t>(operations.is_array() ? operations.size() : 0);
    sr->text = data->is_string() ? data->get<std::string>() : JasonEncode(*data, false);
    sr->result = {{field, *data},
                  {"metadata",
                   {{"operation_count", operation_count},
                    {"input_type", DataTypeName(input)},
                    {"output_type", DataTypeName(*data)}}}};
    return absl::OkStatus();
  }

  // gemini_instructor: one Gemini call constrained by a JSON response schema (InstructorLite
  // over Gemini: temperature 0.7 and 2048 output tokens unless token_budget says otherwise).
  absl::Status RunInstructor(const Step& step, const json& config, StepResult* sr) {
    auto parts = PromptFor(step);
    if (!parts.ok()) return parts.status();
    auto prompt = Build(*parts, results_);
    if (!prompt.ok()) return prompt.status();
    CallSpec spec;
    spec.step_type = step.type;
    spec.model = StringOption(config, "model");
    spec.prompt = std::move(*prompt);
    const bool tools = step.config.contains("functions");
    spec.temperature = tools ? 0.3 : 0.7;
    spec.max_tokens = 2048;
    const json budget = config.value("token_budget", json::object());
    if (budget.is_object()) {
      if (auto t = NumberOption(budget, "temperature")) spec.temperature = *t;
      if (auto m = IntOption(budget, "max_output_tokens")) spec.max_tokens = static_cast<int>(*m);
    }
    spec.timeout_ms = IntOption(config, "timeout_ms").value_or(120000);
    spec.json = true;
    spec.response_schema = step.response_schema.dump();
    auto response = Call(spec);
    if (!response.ok()) return response.status();
    std::optional<json> parsed = ParseJsonResponse(response->text);
    if (!parsed.has_value() || !parsed->is_object()) {
      return absl::InternalError("Gemini call failed: the response is not a JSON object");
    }
    for (const json& field : step.response_schema.value("required", json::array())) {
      if (field.is_string() && !parsed->contains(field.get<std::string>())) {
        return absl::InternalError(
            absl::StrCat("Gemini call failed: the response misses required field \"",
                         field.get<std::string>(), "\""));
      }
    }
    json result = *parsed;
    result["success"] = true;
    result["cost"] = response->cost_usd;
    result["model"] = response->model.empty() ? spec.model : response->model;
    const json text = parsed->value("text", json());
    sr->text = text.is_string() ? text.get<std::string>() : response->text;
    sr->parsed_json = std::move(parsed);
    sr->result = std::move(result);
    return absl::OkStatus();
  }

  absl::Status RunSetVariable(const json& config, StepResult* sr) {
    json variables = config.value("variables", json::object());
    if (auto var = config.find("variable"); var != config.end() && var->is_string()) {
      variables = json{{var->get<std::string>(), config.value("value", json())}};
    }
    if (!variables.is_object() || variables.empty()) {
      sr->result = json::object();
      return absl::OkStatus();
    }
    const std::string scope_name = StringOption(config, "scope");
    const std::string scope =
        (scope_name == "session" || scope_name == "loop") ? scope_name : "global";
    json resolved = json::object();
    for (auto it = variables.begin(); it != variables.end(); ++it) {
      auto value = ResolveVariableValue(it.value(), variables_);
      if (!value.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("Variable assignment failed: ", value.status().message()));
      }
      resolved[it.key()] = std::move(*value);
    }
    json& target = scope == "session" ? variables_.session
                   : scope == "loop"  ? variables_.loop
                                      : variables_.global;
    json names = json::array();
    for (auto it = resolved.begin(); it != resolved.end(); ++it) {
      target[it.key()] = it.value();
      names.push_back(it.key());
    }
    sr->result = {{"variables_set", names},
                  {"scope", scope},
                  {"variable_count", static_cast<int64_t>(resolved.size())}};
    return absl::OkStatus();
  }

  const PipelineExecutor::Options& options_;
  const ConfinedDirectory* prompts_;
  const ConfinedDirectory* outputs_;
  const Pipeline& pipeline_;
  const json& inputs_;
  const ExecuteOptions& execute_;
  RunShared* shared_;
  json results_ = json::object();
  // The innermost loop's context (also results_["loop"]); null outside loops.
  json loop_context_;
  std::string last_text_;
  VariableState variables_;
  TemplateContext templates_;
  // Calls of the step being run.
  std::vector<CallRecord> sr_calls_;
};

}  // namespace

std::string DefaultProviderForStepType(const std::string& step_type) {
  if (absl::StrContains(step_type, "gemini")) return "gemini";
  if (absl::StrContains(step_type, "claude")) return "anthropic";
  return "";
}

const char* StepStatusName(StepStatus status) {
  switch (status) {
    case StepStatus::kSucceeded:
      return "succeeded";
    case StepStatus::kFailed:
      return "failed";
    case StepStatus::kSkipped:
      return "skipped";
  }
  return "unknown";
}

absl::StatusOr<std::unique_ptr<PipelineExecutor>> PipelineExecutor::Create(Options options) {
  if (options.client == nullptr) {
    return absl::InvalidArgumentError("PipelineExecutor needs an LlmClient");
  }
  if (!options.provider) options.provider = DefaultProviderForStepType;
  if (options.clock == nullptr) options.clock = Clock::Real();
  if (options.max_parallel_tasks < 1) options.max_parallel_tasks = 1;
  std::unique_ptr<PipelineExecutor> executor(new PipelineExecutor(std::move(options)));
  if (!executor->options_.prompts_dir.empty()) {
    auto dir = ConfinedDirectory::Open(executor->options_.prompts_dir);
    if (!dir.ok()) return dir.status();
    executor->prompts_ = std::move(*dir);
  }
  if (!executor->options_.output_dir.empty()) {
    auto dir = ConfinedDirectory::Open(executor->options_.output_dir);
    if (!dir.ok()) return dir.status();
    executor->outputs_ = std::move(*dir);
  }
  return executor;
}

absl::StatusOr<ExecutionResult> PipelineExecutor::Execute(const Pipeline& pipeline,
                                                          const json& inputs,
                                                          const ExecuteOptions& options) const {
  if (!inputs.is_null() && !inputs.is_object()) {
    return absl::InvalidArgumentError("inputs must be a JSON object");
  }
  if (pipeline.steps.empty()) return absl::InvalidArgumentError("pipeline has no steps");
  if (pipeline.steps.size() > options_.max_steps) {
    return absl::InvalidArgumentError(absl::StrCat("pipeline has ", pipeline.steps.size(),
                                                   " steps; the limit is ", options_.max_steps));
  }
  if (options.program != nullptr) {
    if (absl::Status s = ValidateProgram(pipeline, *options.program); !s.ok()) return s;
  }
  const absl::Time start = absl::Now();
  ExecutionResult out;
  RunShared shared;
  shared.out = &out;
  Run run(options_, prompts_.get(), outputs_.get(), pipeline, inputs, options, &shared);
  out.status = run.RunPipeline(/*top_level=*/true);
  out.results = run.results();
  out.duration = absl::Now() - start;
  return out;
}

}  // namespace elexirion::pipeline
