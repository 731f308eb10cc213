// The optimizer interface and the registry that maps names to optimizers.
//
// Registered names (parameters in the proto's JSON mapping of OptimizerSpec's messages, DSPy's
// defaults when absent; unknown parameters are INVALID_ARGUMENT):
//   labeled_few_shot           {k: 16}
//   bootstrap_few_shot         {max_bootstrapped_demos: 4, max_labeled_demos: 16, max_rounds: 1,
//                               max_errors: 10, metric_threshold, teacher: LmSpec}
//   bootstrap_random_search    {num_candidate_programs: 16, max_bootstrapped_demos: 4,
//                               max_labeled_demos: 16, max_rounds: 1, max_errors: 10,
//                               stop_at_score, metric_threshold, teacher, labeled_sample: true}
//   copro                      {breadth: 10, depth: 3, init_temperature: 1.4, prompt_model}
//   miprov2                    {auto: light|medium|heavy|off (AUTO_*), num_candidates,
//                               num_trials, max_bootstrapped_demos: 4, max_labeled_demos: 4,
//                               minibatch: true, minibatch_size: 35,
//                               minibatch_full_eval_steps: 5, init_temperature: 1.0,
//                               prompt_model, teacher, metric_threshold, max_errors,
//                               program_aware_proposer: true, data_aware_proposer: true,
//                               tip_aware_proposer: true, fewshot_aware_proposer: true,
//                               view_data_batch_size: 10}
//   gepa                       {exactly one of auto: light|medium|heavy, max_full_evals,
//                               max_metric_calls; reflection_minibatch_size: 3,
//                               candidate_selection_strategy: pareto|current_best,
//                               component_selector: round_robin|all, skip_perfect_score: true,
//                               perfect_score: 1.0, use_merge: true, max_merge_invocations: 5,
//                               reflection_lm}
//   simba                      {bsize: 32, num_candidates: 6, max_steps: 8, max_demos: 4,
//                               demo_input_field_maxlen: 100000, temperature_for_sampling: 0.2,
//                               temperature_for_candidates: 0.2, prompt_model}
// Aliases: LabeledFewShot, BootstrapFewShot, BootstrapFewShotWithRandomSearch, BootstrapRS,
// COPRO, MIPROv2, GEPA, SIMBA (and the proto oneof names random_search / mipro_v2).
// More optimizers register a factory under their name.
//
// Thread safety: an Optimizer instance serves one Compile() at a time; the registry is thread
// safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"
#include "server/optimizer/context.h"
#include "server/optimizer/program.h"

namespace elexirion::optimizer {

struct CandidateRecord {
  double score = 0;  // percent, on the set the optimizer selects with
  ojson params = ojson::object();
  Program program;
};

struct CompileResult {
  Program program;
  // Score of `program` on the optimizer's selection set when it computed one.
  std::optional<double> score;
  // Scored candidates, best first (DSPy's candidate_programs).
  std::vector<CandidateRecord> candidates;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual std::string name() const = 0;
  // Returns the optimized copy of `student`. A stop (cancel, budget, deadline) returns its
  // status; ctx.best_program() then holds the best program seen.
  virtual absl::StatusOr<CompileResult> Compile(const Program& student, OptimizerContext& ctx) = 0;
  // INVALID_ARGUMENT naming the parameter when the data cannot serve it (e.g. SIMBA's bsize
  // above the trainset size); checked before any LLM call.
  virtual absl::Status CheckData(size_t /*train_size*/, size_t /*val_size*/) const {
    return absl::OkStatus();
  }
};

using OptimizerFactory =
    std::function<absl::StatusOr<std::unique_ptr<Optimizer>>(const ojson& params)>;

class OptimizerRegistry {
 public:
  // The process-wide registry with the built-in optimizers.
  static OptimizerRegistry& Global();

  // ALREADY_EXISTS when the name is taken.
  absl::Status Register(const std::string& name, OptimizerFactory factory);
  // INVALID_ARGUMENT for an unknown name (listing the known ones) or bad parameters.
  absl::StatusOr<std::unique_ptr<Optimizer>> Create(const std::string& name,
                                                    const ojson& params) const;
  std::vector<std::string> Names() const;
  // The canonical name for an alias ("BootstrapRS" -> "bootstrap_random_search").
  std::string Canonical(const std::string& name) const;

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, OptimizerFactory> factories_ ABSL_GUARDED_BY(mu_);
};

// Reading optimizer parameters: INVALID_ARGUMENT naming "<optimizer>.<key>".
class ParamReader {
 public:
  ParamReader(const ojson& params, std::string where);
  absl::StatusOr<int> Int(const char* key, int fallback, int min_value);
  absl::StatusOr<double> Double(const char* key, double fallback);
  absl::StatusOr<std::optional<double>> OptionalDouble(const char* key);
  absl::StatusOr<bool> Bool(const char* key, bool fallback);
  absl::StatusOr<std::string> String(const char* key, const std::string& fallback);
  absl::StatusOr<LmSettings> Lm(const char* key);
  // INVALID_ARGUMENT for keys never read.
  absl::Status Finish() const;

 private:
  const ojson params_;
  const std::string where_;
  std::vector<std::string> read_;
};

}  // namespace elexirion::optimizer
