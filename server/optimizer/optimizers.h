// The built-in optimizers (DSPy 3.3.1 dspy/teleprompt/*, see docs/reference dspy.md §3) and
// the building blocks they share.
//
// Parallel but faithful: every optimizer produces the program that DSPy's sequential algorithm
// produces with the same seed, data and model answers, while keeping many calls in flight:
//  - BootstrapFewShot runs the teacher speculatively on a window of upcoming trainset examples
//    at once (round r only where rounds < r failed), then decides in trainset order exactly as
//    the sequential loop would (quota, max_errors), discarding speculative results past the
//    quota; the window adapts to the observed success rate;
//  - evaluations run their examples in parallel (EvaluateMany pools several candidates, as
//    COPRO's independent candidates of one predictor);
//  - n completions (COPRO) are n calls with distinct, seed-derived rollout ids, in parallel;
//  - GEPA and SIMBA run minibatches (with traces and metric feedback, traced_eval.h) and
//    validation passes in parallel and decide in order; GEPA also fetches the parents'
//    minibatch runs of upcoming iterations ahead while its pool cannot change (gepa.cc).
// Random choices use PyRandom (CPython's algorithms) seeded from the job seed: LabeledFewShot
// and BootstrapFewShot's Random(0) become Random(seed) (identical to DSPy at the default seed
// 0), random-search candidate s >= 0 uses Random(seed + s), MIPROv2's rng is Random(seed)
// (DSPy's default 9 only when the caller asks for it). Rollout ids and temperatures are fixed
// functions of the seed and the position, so a warm LLM cache replays a run without calls.
//
// Thread safety: see optimizer.h.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/optimizer/context.h"
#include "server/optimizer/optimizer.h"
#include "server/optimizer/program.h"

namespace elexirion::optimizer {

struct LabeledFewShotOptions {
  int k = 16;
  bool sample = true;
};

struct BootstrapOptions {
  int max_bootstrapped_demos = 4;
  int max_labeled_demos = 16;
  int max_rounds = 1;
  // Accept a trace when score >= threshold (DSPy ignores 0); unset: when the metric passes.
  std::optional<double> metric_threshold;
  int max_errors = 10;
  // Teacher LM (DSPy's teacher_settings lm); unset fields: the student's.
  LmSettings teacher;
};

struct RandomSearchOptions {
  BootstrapOptions bootstrap;
  int num_candidate_programs = 16;
  std::optional<double> stop_at_score;  // percent
  bool labeled_sample = true;
};

struct CoproOptions {
  int breadth = 10;
  int depth = 3;
  double init_temperature = 1.4;
  LmSettings prompt_model;
};

struct MiproOptions {
  enum class Auto { kOff, kLight, kMedium, kHeavy };
  Auto auto_mode = Auto::kLight;
  std::optional<int> num_candidates;
  std::optional<int> num_trials;
  int max_bootstrapped_demos = 4;
  int max_labeled_demos = 4;
  bool minibatch = true;
  int minibatch_size = 35;
  int minibatch_full_eval_steps = 5;
  double init_temperature = 1.0;
  LmSettings prompt_model;
  LmSettings teacher;
  std::optional<double> metric_threshold;
  int max_errors = 10;
  bool program_aware_proposer = true;
  bool data_aware_proposer = true;
  bool tip_aware_proposer = true;
  bool fewshot_aware_proposer = true;
  int view_data_batch_size = 10;
};

struct GepaOptions {
  enum class Auto { kNone, kLight, kMedium, kHeavy };
  enum class Selection { kPareto, kCurrentBest };
  enum class Components { kRoundRobin, kAll };
  // Budget: exactly one of auto, max_full_evals, max_metric_calls.
  Auto auto_mode = Auto::kNone;
  std::optional<int> max_full_evals;
  std::optional<int> max_metric_calls;
  int reflection_minibatch_size = 3;
  Selection candidate_selection = Selection::kPareto;
  Components component_selector = Components::kRoundRobin;
  bool skip_perfect_score = true;
  double perfect_score = 1.0;
  bool use_merge = true;
  int max_merge_invocations = 5;
  // The reflection LM; unset fields: the prompt model's (the request's prompt_lm, else the
  // student's), temperature 1.0 as DSPy's docs advise.
  LmSettings reflection_lm;
};

struct SimbaOptions {
  int bsize = 32;
  int num_candidates = 6;
  int max_steps = 8;
  int max_demos = 4;
  int demo_input_field_maxlen = 100000;
  double temperature_for_sampling = 0.2;
  double temperature_for_candidates = 0.2;
  // The model writing rules (OfferFeedback); unset fields: the prompt model's.
  LmSettings prompt_model;
};

// LabeledFewShot: k demos per predictor sampled from the trainset (raw labeled rows), one
// shared rng so predictors get different samples. No LLM call.
Program LabeledFewShotCompile(const Program& student, const std::vector<Example>& trainset,
                              const LabeledFewShotOptions& options, int64_t seed,
                              const std::string& primary_output);

// BootstrapFewShot on `trainset` (in its given order). `label` names it in events.
absl::StatusOr<Program> BootstrapFewShotCompile(const Program& student,
                                                const std::vector<Example>& trainset,
                                                const BootstrapOptions& options,
                                                OptimizerContext& ctx, const std::string& label);

std::unique_ptr<Optimizer> MakeLabeledFewShot(LabeledFewShotOptions options);
std::unique_ptr<Optimizer> MakeBootstrapFewShot(BootstrapOptions options);
std::unique_ptr<Optimizer> MakeRandomSearch(RandomSearchOptions options);
std::unique_ptr<Optimizer> MakeCopro(CoproOptions options);
std::unique_ptr<Optimizer> MakeMipro(MiproOptions options);
std::unique_ptr<Optimizer> MakeGepa(GepaOptions options);
std::unique_ptr<Optimizer> MakeSimba(SimbaOptions options);

// Parameter parsing (see optimizer.h for the keys).
absl::StatusOr<LabeledFewShotOptions> LabeledFewShotOptionsFromJson(const ojson& params);
absl::StatusOr<BootstrapOptions> BootstrapOptionsFromJson(const ojson& params);
absl::StatusOr<RandomSearchOptions> RandomSearchOptionsFromJson(const ojson& params);
absl::StatusOr<CoproOptions> CoproOptionsFromJson(const ojson& params);
absl::StatusOr<MiproOptions> MiproOptionsFromJson(const ojson& params);
absl::StatusOr<GepaOptions> GepaOptionsFromJson(const ojson& params);
absl::StatusOr<SimbaOptions> SimbaOptionsFromJson(const ojson& params);

// GEPA's auto budget in metric calls (DSPy's GEPA.auto_budget): MIPROv2's light / medium /
// heavy cost model (n = 6 / 12 / 18 candidates) for `predictors` components.
int64_t GepaAutoBudget(GepaOptions::Auto mode, size_t predictors, size_t valset_size);

void RegisterBuiltinOptimizers(OptimizerRegistry& registry);

// An LmSettings with `over`'s set fields applied on top of `base`.
LmSettings MergeLm(const LmSettings& base, const LmSettings& over);

}  // namespace elexirion::optimizer
