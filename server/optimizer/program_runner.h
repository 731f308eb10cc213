// ProgramRunner: runs a Program (pipeline + predictor state) on one example.
//
// HOW A PROGRAM RUNS ON AN EXAMPLE
//  1. The example's `input` object becomes the pipeline's `inputs` ({{inputs.x}}), and the
//     pipeline engine (pipeline::PipelineExecutor) runs every step with pipeline_ex's
//     semantics: conditions, set_variable, templates, previous_response, presets, retries,
//     claude_robust fallbacks, non-optimized steps as plain calls.
//  2. Each predictor step is handed to the engine with a program whose instruction is a marked
//     block (run id, predictor index, the learned instruction and the step's original static
//     text). The engine renders and interpolates the step's prompt as usual and sends it to
//     this runner's intercepting LlmClient, which recognises the block and makes the DSPy call
//     instead:
//       system   = the step's system prompt (claude_options.system_prompt / presets), a blank
//                  line, then the adapter's system message, whose objective is the learned
//                  instruction after {{template}} interpolation;
//       demos    = the predictor's demos as user/assistant turns;
//       user     = the signature's input fields, each resolved as
//                    (a) the example input of that name, else
//                    (b) the same-named output field of an earlier predictor in this run, else
//                    (c) for `input_data`: the step's prompt as pipeline_ex renders it with its
//                        original static parts (templates, files and previous_response
//                        resolved), i.e. the design document's input_data;
//                  unresolved fields are left out, as DSPy leaves out missing inputs;
//       provider, model, temperature, max_tokens, stop and timeouts come from the step (the
//       engine resolves them), overridden by RunConfig.lm (student / teacher LM).
//     The ChatAdapter answer is parsed into the output fields (JSONAdapter fallback on a parse
//     failure). The engine receives, as the step's text, the only non-reasoning output field
//     (strings raw, other values as JSON) or, for several, a JSON object of them, so
//     previous_response, {{steps.x.text}}, conditions and JSON-merging work downstream.
//  3. The prediction is the last predictor's output fields, plus earlier predictors' fields
//     that it does not define. The trace lists every predictor call (name, inputs, outputs) in
//     order, as DSPy's settings.trace does.
// The exported pipeline (RenderOptimizedYaml) keeps the engine's own pipeline_ex rendering of
// the same instruction and demos.
//
// Thread safety: Run() may be called concurrently from any number of threads.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "server/common/cancellation.h"
#include "server/common/clock.h"
#include "server/llm/llm_client.h"
#include "server/llm/usage.h"
#include "server/optimizer/adapter.h"
#include "server/optimizer/example.h"
#include "server/optimizer/predict.h"
#include "server/optimizer/program.h"
#include "server/pipeline/executor.h"
#include "server/pipeline/pipeline.h"

namespace elexirion::optimizer {

struct RunConfig {
  // Overrides for every predictor call (student or teacher LM); unset fields keep the step's.
  LmSettings lm;
  // DSPy's rollout_id: part of the cache key, distinct ids give distinct samples.
  std::string rollout_id;
  const CancellationToken* cancel = nullptr;
  llm::UsageAccount* account = nullptr;
  absl::Time deadline = absl::InfiniteFuture();
  // Serving options (ExecutePipeline with a program).
  bool include_prompts = false;
  bool no_cache = false;
};

struct TraceStep {
  std::string predictor;  // step name
  ojson inputs = ojson::object();
  ojson outputs = ojson::object();
};

struct RunOutcome {
  // OK, or why the program failed (a step error, a parse failure, a provider error, ...).
  absl::Status status;
  ojson prediction = ojson::object();
  std::vector<TraceStep> trace;
  // The pipeline's final text output.
  std::string final_output;
  llm::Usage usage;
  int parse_failures = 0;
  // The engine's per-step results of the run (empty when the run could not start).
  pipeline::ExecutionResult execution;
};

class ProgramRunner {
 public:
  struct Options {
    // Required; not owned; thread safe.
    llm::LlmClient* client = nullptr;
    // Required.
    std::shared_ptr<const pipeline::Pipeline> pipeline;
    // Directory for `file` prompt parts ("" makes them fail).
    std::string prompts_dir;
    // Step type -> provider instance (default: the engine's DefaultProviderForStepType).
    std::function<std::string(const std::string& step_type)> provider;
    AdapterKind adapter = AdapterKind::kChat;
    bool json_fallback = true;
    Clock* clock = Clock::Real();
  };

  static absl::StatusOr<std::unique_ptr<ProgramRunner>> Create(Options options);
  ~ProgramRunner();

  // Never fails as a call: every problem is in RunOutcome::status. INVALID_ARGUMENT there when
  // the program does not fit the pipeline.
  RunOutcome Run(const Program& program, const Example& example, const RunConfig& config) const;

  const pipeline::Pipeline& pipeline() const { return *options_.pipeline; }
  llm::LlmClient& client() const { return *options_.client; }
  const Options& options() const { return options_; }
  // Total parse failures over all runs.
  int64_t parse_failures() const { return parse_failures_.load(); }

  class Interceptor;
  struct RunState;

 private:
  explicit ProgramRunner(Options options);

  Options options_;
  // Steps with instruction parts (the engine's rule: static parts that are not only
  // {{template}} input slots); without them the marked block is joined in front of the prompt.
  std::map<std::string, bool> has_instruction_parts_;
  std::unique_ptr<Interceptor> interceptor_;
  std::unique_ptr<pipeline::PipelineExecutor> executor_;
  mutable std::atomic<uint64_t> next_run_id_{1};
  mutable std::atomic<int64_t> parse_failures_{0};
};

}  // namespace elexirion::optimizer
