// RunOptimization: the entry point the jobs layer calls to run one optimization job.
//
//   OptimizeRequest  what to optimize: the loaded pipeline, which steps (and predictor kinds),
//                    trainset / valset (design-document examples), the metric, the optimizer
//                    name + parameters (registry), seed, parallelism, student LM, adapter.
//   OptimizeHooks    how: the LlmClient (the provider router with its LLM cache), an
//                    EventSink (progress), a CancellationToken (checked between calls; calls
//                    in flight abort), a UsageAccount (budget: calls / dollars; exhausting it
//                    ends the run), a deadline (Budget.max_duration), a CheckpointSink and the
//                    last checkpoint to resume from.
//   OptimizeResult   the optimized Program, its DSPy save-format JSON, the optimized
//                    pipeline_ex YAML (pipeline engine's RenderOptimizedYaml), the report
//                    (baseline and optimized validation scores, per-trial scores, LLM calls,
//                    cache hits, tokens, cost, parse failures, wall time) and why it ended.
//
// Flow: validate everything (INVALID_ARGUMENT naming the field, before any LLM call) ->
// baseline evaluation of the unoptimized program on the valset -> the optimizer -> evaluation
// of the result on the valset -> artifacts. When the valset is empty the last 20% of the
// trainset (at least 1 example; none for a 1-example trainset, which then validates on
// itself) is held out.
//
// A cancel, an exhausted budget or a passed deadline is not an error: the run ends with the
// best program seen so far (the baseline program if none was scored) and end_reason says why
// (OK status). Program or metric errors beyond max_errors, and bad input, are errors.
//
// Thread safety: RunOptimization may run concurrently for different requests; the hooks'
// objects must outlive the call.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "server/common/cancellation.h"
#include "server/llm/llm_client.h"
#include "server/llm/usage.h"
#include "server/optimizer/adapter.h"
#include "server/optimizer/context.h"
#include "server/optimizer/events.h"
#include "server/optimizer/example.h"
#include "server/optimizer/metrics.h"
#include "server/optimizer/program.h"
#include "server/pipeline/pipeline.h"

namespace elexirion::optimizer {

enum class EndReason { kCompleted, kCancelled, kBudgetExhausted, kDeadlineExceeded };
const char* EndReasonName(EndReason reason);

struct OptimizeRequest {
  // Required.
  std::shared_ptr<const pipeline::Pipeline> pipeline;
  // Steps to optimize (empty: every LLM step), predictor kinds, field descriptions.
  ProgramOptions program;
  std::vector<Example> trainset;  // required, non-empty
  std::vector<Example> valset;    // optional (see above)
  MetricSpec metric;
  // Registry name (optimizer.h) and parameters in the proto's JSON mapping.
  std::string optimizer = "bootstrap_few_shot";
  ojson optimizer_params = ojson::object();
  int64_t seed = 0;
  // Program runs in flight; 0: 8 (DSPy's default num_threads). The provider's concurrency
  // limit bounds the calls actually in flight.
  int num_threads = 0;
  // Errors tolerated per evaluation / bootstrap (DSPy's settings.max_errors) unless the
  // optimizer's parameters set max_errors.
  int max_errors = 10;
  // Student LM (unset fields: each step's own).
  LmSettings student_lm;
  // Proposer LM (COPRO / MIPROv2 unless their prompt_model is given); unset fields: the
  // student's, then the first optimized step's provider.
  LmSettings prompt_lm;
  AdapterKind adapter = AdapterKind::kChat;
  bool json_fallback = true;
  // The pipeline engine's settings: `file` prompt parts directory and step type -> provider.
  std::string prompts_dir;
  std::function<std::string(const std::string& step_type)> provider_for_step;
  // A program to compare against (e.g. the production version, DSPy save-format JSON). When
  // set and the run completes, it is applied to this pipeline and scored on this run's own
  // validation set, so the comparison with optimized_score is like for like (a stored score
  // from another run's valset is not).
  std::optional<std::string> reference_dspy_json;
};

struct OptimizeHooks {
  llm::LlmClient* client = nullptr;  // required; thread safe
  EventSink* events = nullptr;
  const CancellationToken* cancel = nullptr;
  llm::UsageAccount* account = nullptr;
  absl::Time deadline = absl::InfiniteFuture();
  CheckpointSink* checkpoint = nullptr;
  const ojson* resume_from = nullptr;
};

struct OptimizationReport {
  std::string optimizer;
  int64_t seed = 0;
  double baseline_score = 0;   // percent on the valset
  double optimized_score = 0;  // percent on the valset
  int validation_size = 0;
  int train_size = 0;
  std::vector<TrialRecord> trials;
  llm::Usage usage;  // this run's provider calls, cache hits, tokens, cost
  int64_t parse_failures = 0;
  int resumed_units = 0;  // units taken from the checkpoint
  EndReason end_reason = EndReason::kCompleted;
  std::string end_message;
  absl::Duration wall_time = absl::ZeroDuration();
  // Per validation example of the optimized program: score and prediction.
  std::vector<ExampleResult> validation_results;
  // The reference program's score on this run's valset (percent), when one was given and it
  // could be scored; otherwise reference_error says why not ("" when none was given).
  std::optional<double> reference_score;
  std::string reference_error;
};
ojson ReportToJson(const OptimizationReport& report);

struct OptimizeResult {
  Program program;
  std::string dspy_json;
  std::string optimized_yaml;
  OptimizationReport report;
  ojson checkpoint;  // the final progress document
};

absl::StatusOr<OptimizeResult> RunOptimization(const OptimizeRequest& request,
                                               const OptimizeHooks& hooks);

}  // namespace elexirion::optimizer
