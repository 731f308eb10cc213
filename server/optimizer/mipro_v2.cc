// MIPROv2 (dspy/teleprompt/mipro_optimizer_v2.py): bootstrapped demo-set candidates,
// grounded instruction proposals, then a TPE search over (instruction, demo set) per predictor
// with minibatch trials and periodic full evaluations.
#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/common/status_macros.h"
#include "server/optimizer/optimizers.h"
#include "server/optimizer/proposer.h"
#include "server/optimizer/py_random.h"
#include "server/optimizer/tpe.h"

namespace elexirion::optimizer {
namespace {

struct AutoSetting {
  int n;
  int val_size;
};

AutoSetting AutoFor(MiproOptions::Auto mode) {
  switch (mode) {
    case MiproOptions::Auto::kMedium:
      return {12, 300};
    case MiproOptions::Auto::kHeavy:
      return {18, 1000};
    default:
      return {6, 100};
  }
}

int TrialsFor(size_t predictors, bool zeroshot, int num_candidates) {
  const double vars = static_cast<double>(predictors) * (zeroshot ? 1 : 2);
  return static_cast<int>(
      std::max(2 * vars * std::log2(static_cast<double>(num_candidates)), 1.5 * num_candidates));
}

std::vector<Example> Pick(const std::vector<Example>& set, const std::vector<size_t>& idx) {
  std::vector<Example> out;
  for (size_t i : idx) out.push_back(set[i]);
  return out;
}

class Mipro final : public Optimizer {
 public:
  explicit Mipro(MiproOptions options) : options_(std::move(options)) {}
  std::string name() const override { return "miprov2"; }

  absl::StatusOr<CompileResult> Compile(const Program& student, OptimizerContext& ctx) override {
    PyRandom rng(ctx.seed());
    std::vector<Example> trainset = ctx.trainset();
    std::vector<Example> valset = ctx.valset();
    if (trainset.empty())
      return absl::InvalidArgumentError("optimizer.miprov2: the trainset is empty");
    if (valset.empty()) {
      if (trainset.size() < 2) {
        return absl::InvalidArgumentError(
            "optimizer.miprov2: the trainset needs at least 2 examples when no valset is given");
      }
      const size_t val_size = std::min<size_t>(1000, std::max<size_t>(1, trainset.size() * 8 / 10));
      const size_t cutoff = trainset.size() - val_size;
      valset.assign(trainset.begin() + static_cast<long>(cutoff), trainset.end());
      trainset.resize(cutoff);
    }
    const bool zeroshot = options_.max_bootstrapped_demos == 0 && options_.max_labeled_demos == 0;
    const size_t P = student.predictors.size();
    int num_trials = options_.num_trials.value_or(0);
    int num_instruct = options_.num_candidates.value_or(0);
    int num_fewshot = options_.num_candidates.value_or(0);
    bool minibatch = options_.minibatch;
    if (options_.auto_mode != MiproOptions::Auto::kOff) {
      const AutoSetting setting = AutoFor(options_.auto_mode);
      valset = Pick(valset, rng.SampleIndices(
                                valset.size(),
                                std::min(valset.size(), static_cast<size_t>(setting.val_size))));
      minibatch = valset.size() > 50;
      num_instruct = zeroshot ? setting.n : static_cast<int>(setting.n * 0.5);
      num_fewshot = setting.n;
      num_trials = TrialsFor(P, zeroshot, setting.n);
    }
    if (minibatch && options_.minibatch_size > static_cast<int>(valset.size())) {
      return absl::InvalidArgumentError(
          absl::StrCat("optimizer.miprov2.minibatch_size: ", options_.minibatch_size,
                       " exceeds the validation set size ", valset.size()));
    }

    // 1. Demo-set candidates (create_n_fewshot_demo_sets with the shared rng).
    ctx.events().OnPhase("bootstrap", absl::StrCat("bootstrapping ", num_fewshot, " demo sets"));
    const int max_labeled = zeroshot ? 0 : options_.max_labeled_demos;
    const int max_boot = zeroshot ? 3 : options_.max_bootstrapped_demos;
    std::vector<std::vector<std::vector<ojson>>> demo_sets(P);
    for (int seed = -3; seed < num_fewshot - 3; ++seed) {
      RETURN_IF_ERROR(ctx.CheckStop());
      std::vector<Example> copy = trainset;
      Program program;
      BootstrapOptions b;
      b.max_labeled_demos = max_labeled;
      b.max_bootstrapped_demos = max_boot;
      b.metric_threshold = options_.metric_threshold;
      b.max_errors = options_.max_errors;
      b.teacher = options_.teacher;
      if (seed == -3) {
        program = student.ResetCopy();
      } else if (seed == -2 && max_labeled > 0) {
        LabeledFewShotOptions lfs;
        lfs.k = max_labeled;
        program = LabeledFewShotCompile(student, copy, lfs, ctx.seed(), ctx.primary_output());
      } else if (seed == -1) {
        ASSIGN_OR_RETURN(program, BootstrapFewShotCompile(student, copy, b, ctx, "demo set 3"));
      } else {
        rng.Shuffle(copy);
        b.max_bootstrapped_demos = static_cast<int>(rng.RandInt(1, std::max(1, max_boot)));
        ASSIGN_OR_RETURN(program, BootstrapFewShotCompile(student, copy, b, ctx,
                                                          absl::StrCat("demo set ", seed + 4)));
      }
      for (size_t i = 0; i < P; ++i) demo_sets[i].push_back(program.predictors[i].demos);
    }

    // 2. Instruction candidates.
    ctx.events().OnPhase("propose",
                         absl::StrCat("proposing ", num_instruct, " instructions per predictor"));
    GroundedProposerOptions gp;
    gp.program_aware = options_.program_aware_proposer;
    gp.data_aware = options_.data_aware_proposer;
    gp.tip_aware = options_.tip_aware_proposer;
    gp.fewshot_aware = options_.fewshot_aware_proposer;
    gp.view_data_batch_size = options_.view_data_batch_size;
    gp.init_temperature = options_.init_temperature;
    gp.prompt_lm = MergeLm(ctx.prompt_lm(), options_.prompt_model);
    ASSIGN_OR_RETURN(std::vector<std::vector<std::string>> instructions,
                     ProposeInstructions(ctx, student, trainset, demo_sets, num_instruct, gp, rng));
    for (size_t i = 0; i < P; ++i) {
      if (instructions[i].empty())
        instructions[i].push_back(student.predictors[i].signature.instructions);
      instructions[i][0] = student.predictors[i].signature.instructions;
    }
    const bool use_demos = !zeroshot;

    // 3. Search.
    ctx.events().OnPhase("search", absl::StrCat(num_trials, " trials"));
    const int steps = std::max(1, options_.minibatch_full_eval_steps);
    const int extra = num_trials % steps != 0 ? 1 : 0;
    const int adjusted = minibatch ? num_trials + num_trials / steps + 1 + extra : num_trials;
    const Program& program = student;
    int trial = ctx.StartTrial(ojson{{"default", true}});
    ASSIGN_OR_RETURN(EvaluationResult base_eval,
                     ctx.Evaluate(program, valset, options_.max_errors));
    const double default_score = base_eval.score;
    ctx.FinishTrial(trial, ojson{{"default", true}}, default_score, false,
                    static_cast<int>(valset.size()));
    ctx.OfferBest(program, default_score, trial);
    double best_score = default_score;
    Program best_program = program;
    CompileResult result;
    result.candidates.push_back(CandidateRecord{default_score, ojson{{"default", true}}, program});

    std::vector<TpeSampler::Param> params;
    for (size_t i = 0; i < P; ++i) {
      params.push_back(
          {absl::StrCat(i, "_predictor_instruction"), static_cast<int>(instructions[i].size())});
      if (use_demos)
        params.push_back(
            {absl::StrCat(i, "_predictor_demos"), static_cast<int>(demo_sets[i].size())});
    }
    TpeSampler sampler(ctx.seed(), params);
    std::map<std::string, int> zeros;
    for (const auto& p : params) zeros[p.name] = 0;
    sampler.AddTrial(zeros, default_score);
    int study_trials = 1;  // Optuna trial numbers (injected trials included)

    struct Scored {
      std::vector<double> scores;
      Program program;
      std::map<std::string, int> params;
      std::string key;
    };
    std::vector<Scored> param_scores;  // in first-seen order
    std::map<std::string, size_t> param_index;
    std::map<std::string, double> fully_evaluated;

    auto build = [&](const std::map<std::string, int>& chosen, std::vector<std::string>* labels) {
      Program candidate = program;
      for (size_t i = 0; i < P; ++i) {
        const int ins = chosen.at(absl::StrCat(i, "_predictor_instruction"));
        candidate.predictors[i].signature.instructions = instructions[i][static_cast<size_t>(ins)];
        labels->push_back(absl::StrCat("Predictor ", i, ": Instruction ", ins));
        if (use_demos) {
          const int ds = chosen.at(absl::StrCat(i, "_predictor_demos"));
          candidate.predictors[i].demos = demo_sets[i][static_cast<size_t>(ds)];
          labels->push_back(absl::StrCat("Predictor ", i, ": Few-Shot Set ", ds));
        }
      }
      return candidate;
    };
    auto to_json = [](const std::map<std::string, int>& m) {
      ojson j = ojson::object();
      for (const auto& [k, v] : m) j[k] = v;
      return j;
    };

    for (int t = 0; t < num_trials; ++t) {
      RETURN_IF_ERROR(ctx.CheckStop());
      const int trial_num = study_trials + 1;  // DSPy's trial.number + 1
      ++study_trials;
      std::map<std::string, int> chosen = sampler.Suggest();
      std::vector<std::string> labels;
      Program candidate = build(chosen, &labels);
      const ojson jparams = to_json(chosen);
      const int id = ctx.StartTrial(jparams);
      const bool is_minibatch =
          minibatch && options_.minibatch_size < static_cast<int>(valset.size());
      std::vector<Example> batch =
          is_minibatch
              ? Pick(valset,
                     rng.SampleIndices(valset.size(), static_cast<size_t>(options_.minibatch_size)))
              : valset;
      absl::StatusOr<EvaluationResult> eval = ctx.Evaluate(candidate, batch, options_.max_errors);
      double score = 0;
      if (eval.ok()) {
        score = eval->score;
      } else if (IsStopStatus(eval.status())) {
        return eval.status();
      }
      // DSPy scores a failed candidate evaluation 0.0 and continues.
      ctx.FinishTrial(id, jparams, score, is_minibatch, static_cast<int>(batch.size()));
      if (!minibatch && score > best_score) {
        best_score = score;
        best_program = candidate;
        ctx.OfferBest(candidate, score, id);
      }
      if (!minibatch) result.candidates.push_back(CandidateRecord{score, jparams, candidate});
      const std::string key = absl::StrJoin(labels, ",");
      auto it = param_index.find(key);
      if (it == param_index.end()) {
        param_index[key] = param_scores.size();
        param_scores.push_back({{score}, candidate, chosen, key});
      } else {
        param_scores[it->second].scores.push_back(score);
      }
      if (minibatch && (trial_num % (steps + 1) == 0 || trial_num == adjusted - 1)) {
        // Full evaluation of the best-mean combination not yet fully evaluated.
        const Scored* pick = nullptr;
        double pick_mean = 0;
        std::vector<const Scored*> ranked;
        for (const Scored& s : param_scores) ranked.push_back(&s);
        auto mean = [](const Scored* s) {
          double sum = 0;
          for (double x : s->scores) sum += x;
          return sum / static_cast<double>(s->scores.size());
        };
        std::stable_sort(ranked.begin(), ranked.end(),
                         [&](const Scored* a, const Scored* b) { return mean(a) > mean(b); });
        for (const Scored* s : ranked) {
          if (fully_evaluated.count(s->key) != 0) continue;
          pick = s;
          pick_mean = mean(s);
          break;
        }
        if (pick != nullptr) {
          const ojson fparams = to_json(pick->params);
          const int fid = ctx.StartTrial(fparams);
          ASSIGN_OR_RETURN(EvaluationResult full,
                           ctx.Evaluate(pick->program, valset, options_.max_errors));
          ctx.FinishTrial(fid, fparams, full.score, false, static_cast<int>(valset.size()));
          sampler_add_pending_ = {pick->params, full.score};
          fully_evaluated[pick->key] = full.score;
          result.candidates.push_back(CandidateRecord{full.score, fparams, pick->program});
          if (full.score > best_score) {
            best_score = full.score;
            best_program = pick->program;
          }
          ctx.OfferBest(pick->program, full.score, fid);
          (void)pick_mean;
        }
      }
      // Optuna completes the objective's trial after the injected full-evaluation trial.
      if (sampler_add_pending_.has_value()) {
        sampler.AddTrial(sampler_add_pending_->first, sampler_add_pending_->second);
        sampler_add_pending_.reset();
        ++study_trials;
      }
      sampler.AddTrial(chosen, score);
    }
    std::stable_sort(
        result.candidates.begin(), result.candidates.end(),
        [](const CandidateRecord& a, const CandidateRecord& b) { return a.score > b.score; });
    result.program = best_program;
    result.score = best_score;
    return result;
  }

 private:
  MiproOptions options_;
  std::optional<std::pair<std::map<std::string, int>, double>> sampler_add_pending_;
};

}  // namespace

std::unique_ptr<Optimizer> MakeMipro(MiproOptions options) {
  return std::make_unique<Mipro>(std::move(options));
}

absl::StatusOr<MiproOptions> MiproOptionsFromJson(const ojson& params) {
  ParamReader r(params, "optimizer.miprov2");
  MiproOptions o;
  ASSIGN_OR_RETURN(std::string mode, r.String("auto", "light"));
  if (mode == "light" || mode == "AUTO_LIGHT" || mode == "AUTO_UNSPECIFIED" || mode.empty()) {
    o.auto_mode = MiproOptions::Auto::kLight;
  } else if (mode == "medium" || mode == "AUTO_MEDIUM") {
    o.auto_mode = MiproOptions::Auto::kMedium;
  } else if (mode == "heavy" || mode == "AUTO_HEAVY") {
    o.auto_mode = MiproOptions::Auto::kHeavy;
  } else if (mode == "off" || mode == "none" || mode == "AUTO_OFF") {
    o.auto_mode = MiproOptions::Auto::kOff;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("optimizer.miprov2.auto: unknown mode \"", mode,
                                                   "\" (light, medium, heavy, off)"));
  }
  ASSIGN_OR_RETURN(int num_candidates, r.Int("num_candidates", 0, 0));
  ASSIGN_OR_RETURN(int num_trials, r.Int("num_trials", 0, 0));
  if (o.auto_mode != MiproOptions::Auto::kOff && (num_candidates != 0 || num_trials != 0)) {
    return absl::InvalidArgumentError(
        "optimizer.miprov2: num_candidates and num_trials cannot be set when auto is light, medium "
        "or heavy (set auto to off)");
  }
  if (o.auto_mode == MiproOptions::Auto::kOff) {
    if (num_candidates == 0)
      return absl::InvalidArgumentError(
          "optimizer.miprov2.num_candidates: required when auto is off");
    if (num_trials == 0)
      return absl::InvalidArgumentError("optimizer.miprov2.num_trials: required when auto is off");
    o.num_candidates = num_candidates;
    o.num_trials = num_trials;
  }
  ASSIGN_OR_RETURN(o.max_bootstrapped_demos, r.Int("max_bootstrapped_demos", 4, 0));
  ASSIGN_OR_RETURN(o.max_labeled_demos, r.Int("max_labeled_demos", 4, 0));
  ASSIGN_OR_RETURN(o.minibatch, r.Bool("minibatch", true));
  ASSIGN_OR_RETURN(o.minibatch_size, r.Int("minibatch_size", 35, 0));
  if (o.minibatch_size == 0) o.minibatch_size = 35;
  ASSIGN_OR_RETURN(o.minibatch_full_eval_steps, r.Int("minibatch_full_eval_steps", 5, 0));
  if (o.minibatch_full_eval_steps == 0) o.minibatch_full_eval_steps = 5;
  ASSIGN_OR_RETURN(o.init_temperature, r.Double("init_temperature", 1.0));
  ASSIGN_OR_RETURN(o.prompt_model, r.Lm("prompt_model"));
  ASSIGN_OR_RETURN(o.teacher, r.Lm("teacher"));
  ASSIGN_OR_RETURN(o.metric_threshold, r.OptionalDouble("metric_threshold"));
  ASSIGN_OR_RETURN(o.max_errors, r.Int("max_errors", 10, 0));
  if (o.max_errors == 0) o.max_errors = 10;
  ASSIGN_OR_RETURN(o.program_aware_proposer, r.Bool("program_aware_proposer", true));
  ASSIGN_OR_RETURN(o.data_aware_proposer, r.Bool("data_aware_proposer", true));
  ASSIGN_OR_RETURN(o.tip_aware_proposer, r.Bool("tip_aware_proposer", true));
  ASSIGN_OR_RETURN(o.fewshot_aware_proposer, r.Bool("fewshot_aware_proposer", true));
  ASSIGN_OR_RETURN(o.view_data_batch_size, r.Int("view_data_batch_size", 10, 1));
  RETURN_IF_ERROR(r.Finish());
  return o;
}

}  // namespace elexirion::optimizer
