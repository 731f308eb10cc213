// PipelineExecutor: runs a loaded Pipeline step by step through an llm::LlmClient.
//
// Semantics follow pipeline_ex's executor (lib/pipeline/executor.ex):
//  - steps run in order; before each, its templates are interpolated and its condition
//    evaluated; a false condition records a "skipped" result
//    {"success": true, "skipped": true, "reason": "Condition not met: <condition>"};
//  - a step failure halts the run (pipeline_ex has no continue-on-error); claude_robust's
//    fallback and claude_batch's per-task errors are successes, as there;
//  - each step's result map (what {{steps.x...}}, previous_response and conditions see) has
//    pipeline_ex's live shape with deterministic fields only:
//      claude          {text, success, cost, model}
//      gemini          {text, success, cost, model, tokens: {input, output, total}}
//      claude_smart    {text, success, cost, model, claude_smart_metadata: {...}}
//      claude_session  ... + session_id, claude_session_metadata
//      claude_extract  ... + extraction_applied (text post-processed per extraction_config)
//      claude_robust   ... + robustness_metadata, claude_robust_metadata (or a fallback)
//      claude_batch    {success, batch_processed, total_tasks, successful_tasks, failed_tasks,
//                       batch_results, text, claude_batch_metadata, performance_statistics}
//      parallel_claude {combined_results, individual_results: {id: result}}
//      set_variable    {variables_set, scope, variable_count}
//      gemini_instructor  the schema-constrained JSON object + {success, cost, model}
//      for_loop        {iterations: [{index, item, success, results | error}], success,
//                       total_items, completed_items}; sub-step results also stay in the
//                       results map (the last iteration's), as in pipeline_ex
//      while_loop      {success, iterations: N, condition_met: false} or
//                       {success: false, iterations, max_iterations_reached: true, reason}
//      pipeline        the child's results (each unwrapped from {"result": x}), or the
//                       `outputs` picked from them; wrapped as {"result": ...} when the step
//                       has `inputs`
//      data_transform  {<output_field or step name>: data, metadata: {operation_count,
//                       input_type, output_type}}
//      file_ops        see file_ops.h
//    Steps inside loops and nested pipelines appear in ExecutionResult::steps under their
//    qualified path ("loop/inner"), before the container, once per iteration; a program's
//    entry for such a path applies at every iteration. For-loop iterations that fail are
//    recorded ({success: false}) and stop the loop (break_on_error: false continues), as in
//    pipeline_ex; cancellation, the deadline, budgets and execution limits always stop the run.
//    Session ids, timestamps and timings, which pipeline_ex also puts there, are left out so
//    that prompts (and LLM cache keys) are deterministic. When a step asks for JSON, the parsed
//    object's fields are merged in (never over text/success/cost/model/tokens), so
//    {{steps.x.findings}} and conditions like `x.severity == "high"` work.
//  - Model calls: one user message holding the rendered prompt; system = system_prompt
//    (+ "\n\n" + append_system_prompt); provider from Options::provider(step type) unless the
//    execution overrides it; model from the override, else claude_options.model (after the
//    preset merge), else the step's `model:`, else "" (the provider's default); timeout_ms
//    bounds each call; gemini token_budget.max_output_tokens / temperature and
//    stop_sequences map to max_tokens / temperature / stop. Enhanced steps retry per
//    claude_options.retry_config like pipeline_ex's enhanced provider.
//
// Thread safety: Execute() is const and may run concurrently from any number of threads on
// one executor (all per-run state is local); the LlmClient must be thread safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "server/common/cancellation.h"
#include "server/common/clock.h"
#include "server/llm/llm_client.h"
#include "server/llm/usage.h"
#include "server/pipeline/confined_dir.h"
#include "server/pipeline/pipeline.h"
#include "server/pipeline/program.h"

namespace elexirion::pipeline {

// claude* and parallel_claude -> "anthropic", gemini* -> "gemini", anything else -> "".
std::string DefaultProviderForStepType(const std::string& step_type);

enum class StepStatus { kSucceeded, kFailed, kSkipped };
const char* StepStatusName(StepStatus status);

struct StepResult {
  std::string name;
  std::string type;
  StepStatus status = StepStatus::kSucceeded;
  // The step's text output ("" when skipped or failed).
  std::string text;
  // The pipeline_ex-shaped result map (see above); null when failed.
  nlohmann::json result;
  // The parsed response when the step asks for JSON and the response parsed.
  std::optional<nlohmann::json> parsed_json;
  // Provider instance and model that answered the (last) call; as requested if none did.
  std::string provider;
  std::string model;
  // Summed over the step's calls (retries and batch tasks included).
  llm::Usage usage;
  absl::Duration duration = absl::ZeroDuration();
  // Rendered system prompt and prompt of the (last) call; only with include_prompts.
  std::string system_prompt;
  std::string prompt;
  std::vector<std::string> ignored_options;
  // Why the step failed (status kFailed).
  absl::Status error;
  std::string skip_reason;
  // True when the built-in simulated model answered.
  bool simulated = false;
};

struct ExecutionResult {
  // OK, or the failing step's error (its code: INVALID_ARGUMENT for bad prompts or files,
  // DEADLINE_EXCEEDED, CANCELLED, RESOURCE_EXHAUSTED for budgets, the provider's code...).
  absl::Status status;
  std::vector<StepResult> steps;  // in execution order, up to the failing step
  // Text of the last top-level step that ran (not skipped), and its name. A loop's text is its
  // last sub-step's; a nested pipeline's is its child's final text.
  std::string final_output;
  std::string final_step;
  // step name -> result map: pipeline_ex's return value.
  nlohmann::json results = nlohmann::json::object();
  llm::Usage usage;
  absl::Duration duration = absl::ZeroDuration();

  bool ok() const { return status.ok(); }
};

struct ExecuteOptions {
  // Per-step instructions and demos (see program.h); nullptr: the pipeline as written.
  const ProgramState* program = nullptr;
  // Replace the provider resolver / every step's model for this execution.
  std::string provider_override;
  std::string model_override;
  absl::Time deadline = absl::InfiniteFuture();
  const CancellationToken* cancel = nullptr;
  // Budget enforcement and accounting, passed to every call.
  llm::UsageAccount* account = nullptr;
  // Keep the rendered system prompt and prompt in each StepResult.
  bool include_prompts = false;
  bool no_cache = false;
  // Passed to every call (distinct ids give distinct samples, as DSPy's rollout_id).
  std::string rollout_id;
};

class PipelineExecutor {
 public:
  struct Options {
    // Required; not owned; must outlive the executor.
    llm::LlmClient* client = nullptr;
    // Directory for `file` prompt parts; "" makes them fail.
    std::string prompts_dir;
    size_t max_prompt_file_bytes = 1 << 20;
    // Rendered prompt size cap per call.
    size_t max_prompt_bytes = 4 << 20;
    // Step type -> provider instance; default DefaultProviderForStepType.
    std::function<std::string(const std::string& step_type)> provider;
    // Pipelines with more steps are refused with INVALID_ARGUMENT.
    size_t max_steps = 500;
    // Iterations of one for_loop (its data_source's length) or while_loop (its
    // max_iterations); beyond, the step fails with INVALID_ARGUMENT.
    size_t max_loop_iterations = 1000;
    // Steps run by one execution, loop iterations and nested pipelines included; beyond, the
    // execution fails with RESOURCE_EXHAUSTED.
    size_t max_executed_steps = 10000;
    // Concurrent calls inside one claude_batch / parallel_claude step.
    int max_parallel_tasks = 4;
    // Directory for `output_to_file`; "" ignores output_to_file (reported in ignored_options).
    // pipeline_ex's defaults.output_dir is never trusted as a server path.
    std::string output_dir;
    // Sleeps between retries (FakeClock in tests); not owned.
    Clock* clock = Clock::Real();
  };

  static absl::StatusOr<std::unique_ptr<PipelineExecutor>> Create(Options options);

  // INVALID_ARGUMENT (returned, not in the result) when `inputs` is neither null nor an
  // object, the pipeline exceeds max_steps, or the program does not fit the pipeline. Every
  // other failure is reported in ExecutionResult::status with the steps run so far.
  // `inputs` null: pipeline_ex without the inputs option ({{inputs.x}} stays literal);
  // an object: with it (single-template values keep their type).
  absl::StatusOr<ExecutionResult> Execute(const Pipeline& pipeline, const nlohmann::json& inputs,
                                          const ExecuteOptions& options = {}) const;

 private:
  explicit PipelineExecutor(Options options) : options_(std::move(options)) {}

  Options options_;
  std::unique_ptr<ConfinedDirectory> prompts_;
  std::unique_ptr<ConfinedDirectory> outputs_;
};

}  // namespace elexirion::pipeline
