// SIMBA (dspy/teleprompt/simba.py, simba_utils.py): stochastic introspective mini-batch
// ascent. There is no validation set: minibatches of the trainset drive the search and the
// final choice is made on the whole trainset.
//
// Each of max_steps steps: the next bsize examples of a seeded shuffle; num_candidates
// resampling LMs (the student's temperature + 0.5 + i * 0.5 / num_candidates); for every
// (LM, example) a source program drawn by softmax over average minibatch scores (temperature
// temperature_for_sampling) among the top programs plus the baseline, run with its trace;
// per-example buckets sorted by (max - min, max, max - mean); then for the buckets in that
// order, until num_candidates + 1 candidates exist: a source program (softmax,
// temperature_for_candidates), a Poisson number of demos dropped, and a random strategy:
//  - append_a_demo: the best trajectory's last call of each predictor becomes an augmented
//    demo (inputs clipped to demo_input_field_maxlen), unless its score is below the batch's
//    10th percentile;
//  - append_a_rule: the prompt model compares the better and the worse trajectory (OfferFeedback,
//    with the metric's feedback as reward info) and its advice per predictor is appended to
//    that predictor's instruction.
// The candidates are scored on the same minibatch and registered; the step's best is a
// "winner". Finally up to num_candidates + 1 evenly spaced winners (the baseline first) are
// scored on the whole trainset and the best is returned.
//
// Parallel but faithful as GEPA: runs of a step go out together and are read back in order;
// random choices use PyRandom(seed) in DSPy's order (numpy's Poisson draw comes from a second
// PyRandom(seed) stream: the same distribution, not numpy's bits). Traced batches, rule
// proposals and evaluations are journaled, so a resumed run repeats no finished call.
#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/common/status_macros.h"
#include "server/optimizer/field_types.h"
#include "server/optimizer/optimizers.h"
#include "server/optimizer/proposer.h"
#include "server/optimizer/py_format.h"
#include "server/optimizer/py_random.h"
#include "server/optimizer/traced_eval.h"

namespace elexirion::optimizer {
namespace {

AdapterSignature OfferFeedbackSignature() {
  auto text = [](std::string name, std::string desc) {
    return AdapterField{std::move(name), FieldType{}, std::move(desc)};
  };
  AdapterSignature s;
  s.instructions =
      "You will see two runs of a program built from LLM-driven modules on the same input: a "
      "better one and a worse one, each with the reward its outputs earned. Help each module "
      "learn how to earn more reward when it meets similar inputs later.\n\n"
      "The modules will not remember these runs; they only get your advice, which should be "
      "concrete yet general enough to carry over.\n\n"
      "When advising:\n"
      "- Skip boilerplate; say what would change the module's behaviour for the better.\n"
      "- Keep the advice for a module about that module's own sub-task.\n"
      "- Ground it in how the worse run differs from the better one.\n"
      "- Use every module name exactly once as a key of the advice dictionary.";
  s.inputs = {text("program_code", "The code of the program being analysed"),
              text("modules_defn", "Each module of the program with its inputs and outputs"),
              text("program_inputs", "The inputs of the program in these runs"),
              text("oracle_metadata", "Hidden information about this training instance"),
              text("worse_program_trajectory", "Each module's inputs and outputs in the run"),
              text("worse_program_outputs", "The program's outputs in the run"),
              text("worse_reward_value", "The reward the outputs earned"),
              text("worse_reward_info", "What the reward function said about the outputs"),
              text("better_program_trajectory", "Each module's inputs and outputs in the run"),
              text("better_program_outputs", "The program's outputs in the run"),
              text("better_reward_value", "The reward the outputs earned"),
              text("better_reward_info", "What the reward function said about the outputs"),
              text("module_names", "The modules to advise")};
  AdapterField advice =
      text("module_advice",
           "For each module, concretely: if the module receives <these inputs or patterns>, it "
           "should <content, behaviour or strategy to adopt, or to avoid>, so that with the tip it "
           "acts like the better run rather than the worse one.");
  advice.type = *ParseFieldType("dict[str, str]");
  s.outputs = {text("discussion", "Where each module went wrong, if it did"), advice};
  return s;
}

// numpy.percentile with linear interpolation.
double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = q / 100.0 * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

// Knuth's Poisson sampler (small means only, as SIMBA's num_demos / max_demos).
int Poisson(double mean, PyRandom& rng) {
  const double limit = std::exp(-mean);
  int k = 0;
  double p = rng.Random();
  while (p > limit) {
    ++k;
    p *= rng.Random();
  }
  return k;
}

std::string ModulesDefinition(const Program& program) {
  const std::string separator(80, '-');
  std::vector<std::string> out = {separator};
  for (const Predictor& p : program.predictors) {
    std::vector<std::string> inputs;
    std::vector<std::string> outputs;
    for (const auto& f : p.signature.inputs) inputs.push_back(f.name);
    for (const std::string& f : p.OutputNames()) outputs.push_back(f);
    out.push_back(absl::StrCat("Module ", p.name, "\n\tInput Fields: ", absl::StrJoin(inputs, ", "),
                               "\n\tOutput Fields: ", absl::StrJoin(outputs, ", "),
                               "\n\tOriginal Instructions: ", p.signature.instructions));
    out.push_back(separator);
  }
  return absl::StrJoin(out, "\n");
}

ojson TrajectoryJson(const TracedRun& run) {
  ojson out = ojson::array();
  for (const TraceStep& s : run.trace) {
    out.push_back(
        ojson{{"module_name", s.predictor}, {"inputs", s.inputs}, {"outputs", s.outputs}});
  }
  return out;
}

class Simba final : public Optimizer {
 public:
  explicit Simba(SimbaOptions options) : options_(std::move(options)) {}
  std::string name() const override { return "simba"; }

  absl::Status CheckData(size_t train_size, size_t /*val_size*/) const override {
    if (train_size < static_cast<size_t>(options_.bsize)) {
      return absl::InvalidArgumentError(absl::StrCat("optimizer.simba.bsize: ", options_.bsize,
                                                     " exceeds the trainset size ", train_size));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<CompileResult> Compile(const Program& student, OptimizerContext& ctx) override {
    const std::vector<Example>& trainset = ctx.trainset();
    const size_t bsize = static_cast<size_t>(options_.bsize);
    RETURN_IF_ERROR(CheckData(trainset.size(), ctx.valset().size()));
    const size_t n_cand = static_cast<size_t>(options_.num_candidates);
    PyRandom rng(ctx.seed());
    PyRandom rng_np(ctx.seed());
    const LmSettings prompt_lm = MergeLm(ctx.prompt_lm(), options_.prompt_model);

    programs_ = {student};
    scores_ = {{}};
    std::vector<size_t> winners = {0};
    std::vector<size_t> data(trainset.size());
    for (size_t i = 0; i < data.size(); ++i) data[i] = i;
    rng.Shuffle(data);
    size_t next = 0;

    // Resampling LMs: temperatures from the student's (0 when unset).
    std::vector<RunConfig> models;
    const double start = ctx.student().lm.temperature.value_or(0.0);
    for (size_t i = 0; i < n_cand; ++i) {
      RunConfig c = ctx.student();
      c.lm.temperature = start + 0.5 + static_cast<double>(i) * (0.5 / static_cast<double>(n_cand));
      models.push_back(c);
    }
    ctx.events().OnPhase("search", absl::StrCat("SIMBA, ", options_.max_steps, " steps"));

    for (int step = 0; step < options_.max_steps; ++step) {
      RETURN_IF_ERROR(ctx.CheckStop());
      if (next + bsize > trainset.size()) {
        rng.Shuffle(data);
        next = 0;
      }
      std::vector<Example> batch;
      for (size_t k = next; k < next + bsize; ++k) batch.push_back(trainset[data[k]]);
      next += bsize;

      // Trajectories: every (model, example) with a softmax-drawn source program.
      const std::vector<size_t> top = TopKPlusBaseline(n_cand);
      std::vector<TracedJob> jobs;
      for (const RunConfig& model : models) {
        for (const Example& e : batch) {
          const size_t src = Softmax(top, options_.temperature_for_sampling, rng);
          jobs.push_back(TracedJob{&programs_[src], &e, model});
        }
      }
      ASSIGN_OR_RETURN(std::vector<TracedRun> outputs, RunTraced(ctx, jobs, "simba"));
      std::vector<double> all;
      for (const TracedRun& r : outputs) all.push_back(r.score);
      const double p10 = Percentile(all, 10);
      const double p90 = Percentile(all, 90);

      struct Bucket {
        std::vector<const TracedRun*> runs;
        size_t example = 0;
        std::tuple<double, double, double> stats;
      };
      std::vector<Bucket> buckets;
      for (size_t e = 0; e < batch.size(); ++e) {
        Bucket b;
        b.example = e;
        for (size_t m = 0; m < models.size(); ++m) b.runs.push_back(&outputs[m * bsize + e]);
        std::stable_sort(b.runs.begin(), b.runs.end(), [](const TracedRun* x, const TracedRun* y) {
          return x->score > y->score;
        });
        double sum = 0;
        for (const TracedRun* r : b.runs) sum += r->score;
        const double max = b.runs.front()->score;
        const double min = b.runs.back()->score;
        b.stats = {max - min, max, max - sum / static_cast<double>(b.runs.size())};
        buckets.push_back(std::move(b));
      }
      std::stable_sort(buckets.begin(), buckets.end(),
                       [](const Bucket& x, const Bucket& y) { return x.stats > y.stats; });

      // New candidates from the buckets.
      std::vector<Program> candidates;
      for (size_t bi = 0; bi < buckets.size(); ++bi) {
        const Bucket& bucket = buckets[bi];
        const size_t src =
            Softmax(TopKPlusBaseline(n_cand), options_.temperature_for_candidates, rng);
        Program candidate = programs_[src];
        const int max_demos = options_.max_demos > 0 ? options_.max_demos : 3;
        size_t num_demos = 0;
        for (const Predictor& p : candidate.predictors)
          num_demos = std::max(num_demos, p.demos.size());
        int drop = std::max(Poisson(static_cast<double>(num_demos) / max_demos, rng_np),
                            static_cast<int>(num_demos) >= max_demos ? 1 : 0);
        drop = std::min(drop, static_cast<int>(num_demos));
        std::set<size_t> dropped;
        for (int d = 0; d < drop; ++d)
          dropped.insert(static_cast<size_t>(rng.RandBelow(num_demos)));
        for (Predictor& p : candidate.predictors) {
          std::vector<ojson> kept;
          for (size_t k = 0; k < p.demos.size(); ++k) {
            if (dropped.count(k) == 0) kept.push_back(p.demos[k]);
          }
          p.demos = std::move(kept);
        }
        // rng.choice over [append_a_demo, append_a_rule], or [append_a_rule] without demos.
        const bool use_rule =
            options_.max_demos <= 0 ? (rng.ChoiceIndex(1), true) : rng.ChoiceIndex(2) == 1;
        if (use_rule) {
          absl::StatusOr<bool> ok = AppendRule(ctx, bucket.runs, batch[bucket.example], p10, p90,
                                               prompt_lm, step, bi, candidate);
          if (!ok.ok()) {
            if (IsStopStatus(ok.status())) return ok.status();
            continue;  // DSPy logs a failed strategy and skips the bucket
          }
        } else {
          AppendDemo(*bucket.runs.front(), p10, candidate);
        }
        candidates.push_back(std::move(candidate));
        if (candidates.size() >= n_cand + 1) break;
      }

      // Score the candidates on the same minibatch.
      std::vector<TracedJob> eval_jobs;
      for (const Program& c : candidates) {
        for (const Example& e : batch) eval_jobs.push_back(TracedJob{&c, &e, ctx.student()});
      }
      ASSIGN_OR_RETURN(std::vector<TracedRun> evals, RunTraced(ctx, eval_jobs, "simba"));
      IterationEvent event;
      event.optimizer = "simba";
      event.iteration = step;
      event.kind = "step";
      event.minibatch_size = static_cast<int>(bsize);
      event.minibatch_score_before = SumScores(outputs) / static_cast<double>(models.size());
      double best_avg = -1;
      size_t best = 0;
      for (size_t c = 0; c < candidates.size(); ++c) {
        std::vector<double> s;
        for (size_t e = 0; e < bsize; ++e) s.push_back(evals[c * bsize + e].score);
        double sum = 0;
        for (double x : s) sum += x;
        const double avg = sum / static_cast<double>(bsize);
        if (avg > best_avg) {
          best_avg = avg;
          best = c;
        }
        programs_.push_back(candidates[c]);
        scores_.push_back(std::move(s));
      }
      if (!candidates.empty()) {
        const size_t index = programs_.size() - candidates.size() + best;
        winners.push_back(index);
        event.candidate = static_cast<int>(index);
        event.accepted = true;
        event.minibatch_score_after = best_avg * static_cast<double>(bsize);
        const ojson params = ojson{{"step", step}, {"candidate", index}};
        const int trial = ctx.StartTrial(params);
        ctx.FinishTrial(trial, params, PercentScore(event.minibatch_score_after, bsize), true,
                        static_cast<int>(bsize));
      }
      event.pool_size = static_cast<int>(programs_.size());
      ctx.events().OnIteration(event);
      ctx.EmitUsage();
    }

    // Evenly spaced winners, scored on the whole trainset.
    const size_t M = winners.size() - 1;
    const size_t N = n_cand + 1;
    std::vector<size_t> picks;
    for (size_t i = 0; i < N; ++i) {
      const size_t w = M < 1 ? 0
                             : static_cast<size_t>(std::nearbyint(static_cast<double>(i * M) /
                                                                  static_cast<double>(N - 1)));
      if (std::find(picks.begin(), picks.end(), w) == picks.end()) picks.push_back(w);
    }
    std::vector<const Program*> finalists;
    for (size_t w : picks) finalists.push_back(&programs_[winners[w]]);
    ctx.events().OnPhase("search", "scoring the winners on the trainset");
    std::vector<absl::StatusOr<EvaluationResult>> finals = ctx.EvaluateMany(finalists, trainset);
    CompileResult result;
    double best_score = -1;
    for (size_t k = 0; k < finalists.size(); ++k) {
      if (!finals[k].ok()) return finals[k].status();
      const ojson params = ojson{{"winner", picks[k]}, {"candidate", winners[picks[k]]}};
      const int trial = ctx.StartTrial(params);
      ctx.FinishTrial(trial, params, finals[k]->score, false, static_cast<int>(trainset.size()));
      ctx.OfferBest(*finalists[k], finals[k]->score, trial);
      if (finals[k]->score > best_score) {
        best_score = finals[k]->score;
        result.program = *finalists[k];
        result.score = finals[k]->score;
      }
      result.candidates.push_back(CandidateRecord{finals[k]->score, params, *finalists[k]});
    }
    std::stable_sort(
        result.candidates.begin(), result.candidates.end(),
        [](const CandidateRecord& a, const CandidateRecord& b) { return a.score > b.score; });
    return result;
  }

 private:
  double Average(size_t index) const {
    const std::vector<double>& s = scores_[index];
    if (s.empty()) return 0;
    double sum = 0;
    for (double x : s) sum += x;
    return sum / static_cast<double>(s.size());
  }

  std::vector<size_t> TopKPlusBaseline(size_t k) const {
    std::vector<size_t> order(programs_.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return Average(a) > Average(b); });
    std::vector<size_t> top(order.begin(), order.begin() + std::min(k, order.size()));
    if (std::find(top.begin(), top.end(), 0) == top.end() && !top.empty()) top.back() = 0;
    std::vector<size_t> out;
    for (size_t i : top) {
      if (std::find(out.begin(), out.end(), i) == out.end()) out.push_back(i);
    }
    return out;
  }

  size_t Softmax(const std::vector<size_t>& idxs, double temperature, PyRandom& rng) const {
    std::vector<double> exps;
    for (size_t i : idxs) exps.push_back(std::exp(Average(i) / temperature));
    return idxs[rng.WeightedChoiceIndex(exps)];
  }

  void AppendDemo(const TracedRun& good, double p10, Program& candidate) const {
    if (good.score < p10) return;
    std::map<std::string, ojson> last;
    for (const TraceStep& s : good.trace) {
      ojson demo = ojson::object();
      demo["augmented"] = true;
      for (auto it = s.inputs.begin(); it != s.inputs.end(); ++it) {
        std::string text = it->is_string() ? it->get<std::string>() : PyStr(*it);
        const size_t max = static_cast<size_t>(options_.demo_input_field_maxlen);
        demo[it.key()] =
            max > 0 && text.size() > max
                ? ojson(absl::StrCat(text.substr(0, max), "\n\t\t... <TRUNCATED FOR BREVITY>"))
                : *it;
      }
      for (auto it = s.outputs.begin(); it != s.outputs.end(); ++it) demo[it.key()] = *it;
      last[s.predictor] = std::move(demo);
    }
    for (Predictor& p : candidate.predictors) {
      auto it = last.find(p.name);
      if (it != last.end()) p.demos.push_back(it->second);
    }
  }

  absl::StatusOr<bool> AppendRule(OptimizerContext& ctx, const std::vector<const TracedRun*>& runs,
                                  const Example& example, double p10, double p90,
                                  const LmSettings& lm, int step, size_t bucket,
                                  Program& candidate) const {
    TracedRun good = *runs.front();
    TracedRun bad = *runs.back();
    if (good.score < p10 || bad.score > p90) return false;
    ojson good_score = good.score;
    ojson bad_score = bad.score;
    if (good.score <= bad.score) {
      TracedRun& blank = good.score > p90 ? bad : good;
      ojson& blank_score = good.score > p90 ? bad_score : good_score;
      blank.trace.clear();
      blank.prediction = ojson{{"N/A", "Prediction not available"}};
      blank_score = "N/A";
    }
    ojson names = ojson::array();
    for (const Predictor& p : candidate.predictors) names.push_back(p.name);
    ojson in = ojson::object();
    in["program_code"] = ProgramCode(ctx.runner().pipeline(), candidate);
    in["modules_defn"] = ModulesDefinition(candidate);
    in["program_inputs"] = PyJsonDumps(example.input, 2);
    in["oracle_metadata"] = PyJsonDumps(example.expected_output, 2);
    in["worse_program_trajectory"] = PyJsonDumps(TrajectoryJson(bad), 2);
    in["worse_program_outputs"] = PyJsonDumps(bad.prediction, 2);
    in["worse_reward_value"] = PyJsonDumps(bad_score, 2);
    in["worse_reward_info"] = PyJsonDumps(ojson{{"feedback", bad.feedback}}, 2);
    in["better_program_trajectory"] = PyJsonDumps(TrajectoryJson(good), 2);
    in["better_program_outputs"] = PyJsonDumps(good.prediction, 2);
    in["better_reward_value"] = PyJsonDumps(good_score, 2);
    in["better_reward_info"] = PyJsonDumps(ojson{{"feedback", good.feedback}}, 2);
    in["module_names"] = PyJsonDumps(names, 2);
    ASSIGN_OR_RETURN(std::vector<ojson> outs,
                     SampleCompletions(ctx, OfferFeedbackSignature(), in, 1, lm,
                                       absl::StrCat("simba/", ctx.seed(), "/", step, "/", bucket)));
    if (outs.empty() || !outs[0].contains("module_advice") ||
        !outs[0]["module_advice"].is_object()) {
      return absl::InvalidArgumentError("simba: the rule did not parse");
    }
    const ojson& advice = outs[0]["module_advice"];
    for (Predictor& p : candidate.predictors) {
      auto it = advice.find(p.name);
      if (it == advice.end()) continue;
      p.signature.instructions = absl::StrCat(
          p.signature.instructions, "\n\n", it->is_string() ? it->get<std::string>() : PyStr(*it));
    }
    return true;
  }

  SimbaOptions options_;
  std::vector<Program> programs_;
  std::vector<std::vector<double>> scores_;
};

}  // namespace

std::unique_ptr<Optimizer> MakeSimba(SimbaOptions options) {
  return std::make_unique<Simba>(std::move(options));
}

absl::StatusOr<SimbaOptions> SimbaOptionsFromJson(const ojson& params) {
  ParamReader r(params, "optimizer.simba");
  SimbaOptions o;
  ASSIGN_OR_RETURN(o.bsize, r.Int("bsize", 32, 0));
  if (o.bsize == 0) o.bsize = 32;
  ASSIGN_OR_RETURN(o.num_candidates, r.Int("num_candidates", 6, 0));
  if (o.num_candidates == 0) o.num_candidates = 6;
  ASSIGN_OR_RETURN(o.max_steps, r.Int("max_steps", 8, 0));
  if (o.max_steps == 0) o.max_steps = 8;
  // 0: rules only (the proto field has presence, so 0 is a choice, not "unset").
  ASSIGN_OR_RETURN(o.max_demos, r.Int("max_demos", 4, 0));
  ASSIGN_OR_RETURN(o.demo_input_field_maxlen, r.Int("demo_input_field_maxlen", 100000, 0));
  if (o.demo_input_field_maxlen == 0) o.demo_input_field_maxlen = 100000;
  ASSIGN_OR_RETURN(o.temperature_for_sampling, r.Double("temperature_for_sampling", 0.2));
  if (o.temperature_for_sampling == 0) o.temperature_for_sampling = 0.2;
  if (o.temperature_for_sampling < 0) {
    return absl::InvalidArgumentError("optimizer.simba.temperature_for_sampling: must be > 0");
  }
  ASSIGN_OR_RETURN(o.temperature_for_candidates, r.Double("temperature_for_candidates", 0.2));
  if (o.temperature_for_candidates == 0) o.temperature_for_candidates = 0.2;
  if (o.temperature_for_candidates < 0) {
    return absl::InvalidArgumentError("optimizer.simba.temperature_for_candidates: must be > 0");
  }
  ASSIGN_OR_RETURN(o.prompt_model, r.Lm("prompt_model"));
  RETURN_IF_ERROR(r.Finish());
  return o;
}

}  // namespace elexirion::optimizer
