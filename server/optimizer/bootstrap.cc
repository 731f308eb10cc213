// LabeledFewShot, BootstrapFewShot and BootstrapFewShotWithRandomSearch.
#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"
#include "server/optimizer/hashing.h"
#include "server/optimizer/optimizers.h"
#include "server/optimizer/parallel.h"
#include "server/optimizer/py_random.h"

namespace elexirion::optimizer {
namespace {

ojson DemoFromTrace(const TraceStep& step) {
  ojson demo = ojson::object();
  demo["augmented"] = true;
  for (auto it = step.inputs.begin(); it != step.inputs.end(); ++it) demo[it.key()] = it.value();
  for (auto it = step.outputs.begin(); it != step.outputs.end(); ++it) demo[it.key()] = it.value();
  return demo;
}

// One teacher run on one example in one round.
struct Attempt {
  bool ran = false;
  bool success = false;
  bool error = false;
  std::string error_message;
  // (predictor name, demo) for every step of the trace, in trace order.
  std::vector<std::pair<std::string, ojson>> steps;
};

// A finished attempt as journaled (errors are not: a resumed run tries them again).
ojson AttemptToJson(const Attempt& a) {
  ojson steps = ojson::array();
  for (const auto& [name, demo] : a.steps) steps.push_back(ojson::array({name, demo}));
  return ojson{{"success", a.success}, {"steps", steps}};
}

std::optional<Attempt> AttemptFromJson(const ojson& json) {
  if (!json.is_object() || !json.contains("success") || !json.contains("steps")) {
    return std::nullopt;
  }
  Attempt a;
  a.ran = true;
  a.success = json["success"].get<bool>();
  for (const ojson& step : json["steps"]) {
    if (!step.is_array() || step.size() != 2 || !step[0].is_string()) return std::nullopt;
    a.steps.emplace_back(step[0].get<std::string>(), step[1]);
  }
  return a;
}

ojson ProgramDemosJson(const Program& program) {
  ojson out = ojson::object();
  for (const Predictor& p : program.predictors) {
    ojson demos = ojson::array();
    for (const ojson& d : p.demos) demos.push_back(d);
    out[p.name] = demos;
  }
  return out;
}

Program WithDemos(const Program& student, const ojson& demos) {
  Program out = student.ResetCopy();
  for (Predictor& p : out.predictors) {
    auto it = demos.find(p.name);
    if (it == demos.end()) continue;
    for (const ojson& d : *it) p.demos.push_back(d);
  }
  return out;
}

class LabeledFewShot final : public Optimizer {
 public:
  explicit LabeledFewShot(LabeledFewShotOptions options) : options_(options) {}
  std::string name() const override { return "labeled_few_shot"; }
  absl::StatusOr<CompileResult> Compile(const Program& student, OptimizerContext& ctx) override {
    CompileResult result;
    result.program =
        LabeledFewShotCompile(student, ctx.trainset(), options_, ctx.seed(), ctx.primary_output());
    return result;
  }

 private:
  LabeledFewShotOptions options_;
};

class BootstrapFewShot final : public Optimizer {
 public:
  explicit BootstrapFewShot(BootstrapOptions options) : options_(options) {}
  std::string name() const override { return "bootstrap_few_shot"; }
  absl::StatusOr<CompileResult> Compile(const Program& student, OptimizerContext& ctx) override {
    ctx.events().OnPhase("bootstrap", "bootstrapping demos from the trainset");
    auto program = BootstrapFewShotCompile(student, ctx.trainset(), options_, ctx, "bootstrap");
    if (!program.ok()) return program.status();
    CompileResult result;
    result.program = std::move(*program);
    return result;
  }

 private:
  BootstrapOptions options_;
};

class RandomSearch final : public Optimizer {
 public:
  explicit RandomSearch(RandomSearchOptions options) : options_(options) {}
  std::string name() const override { return "bootstrap_random_search"; }

  absl::StatusOr<CompileResult> Compile(const Program& student, OptimizerContext& ctx) override {
    const std::vector<Example>& valset = ctx.valset().empty() ? ctx.trainset() : ctx.valset();
    CompileResult result;
    std::optional<double> best;
    const int max_boot = options_.bootstrap.max_bootstrapped_demos;
    for (int seed = -3; seed < options_.num_candidate_programs; ++seed) {
      RETURN_IF_ERROR(ctx.CheckStop());
      std::vector<Example> trainset = ctx.trainset();
      Program program;
      ojson params = ojson{{"seed", seed}};
      const int trial = ctx.StartTrial(params);
      if (seed == -3) {
        program = student.ResetCopy();
      } else if (seed == -2) {
        LabeledFewShotOptions lfs;
        lfs.k = options_.bootstrap.max_labeled_demos;
        lfs.sample = options_.labeled_sample;
        program = LabeledFewShotCompile(student, trainset, lfs, ctx.seed(), ctx.primary_output());
      } else if (seed == -1) {
        auto p = BootstrapFewShotCompile(student, trainset, options_.bootstrap, ctx,
                                         "candidate seed -1");
        if (!p.ok()) return p.status();
        program = std::move(*p);
      } else {
        PyRandom(ctx.seed() + seed).Shuffle(trainset);
        const int size =
            static_cast<int>(PyRandom(ctx.seed() + seed).RandInt(1, std::max(1, max_boot)));
        BootstrapOptions b = options_.bootstrap;
        b.max_bootstrapped_demos = max_boot < 1 ? max_boot : size;
        params["max_bootstrapped_demos"] = b.max_bootstrapped_demos;
        auto p = BootstrapFewShotCompile(student, trainset, b, ctx,
                                         absl::StrCat("candidate seed ", seed));
        if (!p.ok()) return p.status();
        program = std::move(*p);
      }
      auto eval = ctx.Evaluate(program, valset, options_.bootstrap.max_errors);
      if (!eval.ok()) return eval.status();
      ctx.FinishTrial(trial, params, eval->score, false, static_cast<int>(valset.size()));
      if (!best.has_value() || eval->score > *best) {
        best = eval->score;
        result.program = program;
        result.score = eval->score;
      }
      ctx.OfferBest(program, eval->score, trial);
      result.candidates.push_back(CandidateRecord{eval->score, params, std::move(program)});
      if (options_.stop_at_score.has_value() && eval->score >= *options_.stop_at_score) break;
    }
    std::stable_sort(
        result.candidates.begin(), result.candidates.end(),
        [](const CandidateRecord& a, const CandidateRecord& b) { return a.score > b.score; });
    return result;
  }

 private:
  RandomSearchOptions options_;
};

}  // namespace

LmSettings MergeLm(const LmSettings& base, const LmSettings& over) {
  LmSettings out = base;
  if (!over.provider.empty()) out.provider = over.provider;
  if (!over.model.empty()) out.model = over.model;
  if (over.temperature.has_value()) out.temperature = over.temperature;
  if (over.max_tokens.has_value()) out.max_tokens = over.max_tokens;
  return out;
}

Program LabeledFewShotCompile(const Program& student, const std::vector<Example>& trainset,
                              const LabeledFewShotOptions& options, int64_t seed,
                              const std::string& primary_output) {
  Program out = student.ResetCopy();
  if (trainset.empty()) return out;
  PyRandom rng(seed);
  const size_t k = std::min(static_cast<size_t>(std::max(0, options.k)), trainset.size());
  for (Predictor& p : out.predictors) {
    std::vector<size_t> picked;
    if (options.sample) {
      picked = rng.SampleIndices(trainset.size(), k);
    } else {
      for (size_t i = 0; i < k; ++i) picked.push_back(i);
    }
    for (size_t i : picked) p.demos.push_back(FlatRecord(trainset[i], primary_output));
  }
  return out;
}

absl::StatusOr<Program> BootstrapFewShotCompile(const Program& student,
                                                const std::vector<Example>& trainset,
                                                const BootstrapOptions& options,
                                                OptimizerContext& ctx, const std::string& label) {
  const Program reset = student.ResetCopy();
  const LmSettings teacher_lm = MergeLm(ctx.student().lm, options.teacher);
  const std::string key = absl::StrCat(
      "bootstrap/",
      HashHex(absl::StrCat(
          reset.StateJson().dump(), "\x1f", DevsetKey(trainset), "\x1f",
          options.max_bootstrapped_demos, ",", options.max_labeled_demos, ",", options.max_rounds,
          ",", options.metric_threshold.has_value() ? *options.metric_threshold : -1.0, ",",
          options.max_errors, "\x1f", OptimizerContext::LmKey(teacher_lm), "\x1f", ctx.seed())));
  if (std::optional<ojson> saved = ctx.Lookup(key)) return WithDemos(student, *saved);

  // The teacher: the student with LabeledFewShot(k = max_labeled_demos) demos.
  Program teacher = reset;
  if (options.max_labeled_demos > 0) {
    LabeledFewShotOptions lfs;
    lfs.k = options.max_labeled_demos;
    teacher = LabeledFewShotCompile(reset, trainset, lfs, ctx.seed(), ctx.primary_output());
  }
  RunConfig teacher_config = ctx.student();
  teacher_config.lm = teacher_lm;

  const size_t n = trainset.size();
  const int needed = options.max_bootstrapped_demos;
  const int rounds = std::max(1, options.max_rounds);
  std::map<std::string, std::vector<ojson>> name2traces;
  std::vector<bool> bootstrapped(n, false);
  int accepted = 0;
  int errors = 0;
  int decided = 0;
  int attempted = 0;  // examples decided, for the adaptive window
  size_t pos = 0;

  // Runs the teacher on example i in round r. Each finished attempt is journaled, so a
  // resumed job takes the attempts it already made (accepted demos included) from its
  // checkpoint instead of running them again.
  auto attempt_key = [&](size_t i, int r) {
    return absl::StrCat(key, "/attempt/", ExampleFingerprint(trainset[i]), "/", r);
  };
  auto attempt = [&](size_t i, int r) {
    if (std::optional<ojson> saved = ctx.Lookup(attempt_key(i, r))) {
      if (std::optional<Attempt> resumed = AttemptFromJson(*saved)) return *resumed;
    }
    Attempt a;
    a.ran = true;
    Program t = teacher;
    const ojson self = FlatRecord(trainset[i], ctx.primary_output());
    for (Predictor& p : t.predictors) {
      p.demos.erase(std::remove(p.demos.begin(), p.demos.end(), self), p.demos.end());
    }
    RunConfig config = teacher_config;
    if (r > 0) {
      config.rollout_id = absl::StrCat(r);
      config.lm.temperature = 1.0;
    }
    RunOutcome outcome = ctx.runner().Run(t, trainset[i], config);
    if (!outcome.status.ok()) {
      a.error = true;
      a.error_message = outcome.status.ToString();
      return a;
    }
    MetricContext mc;
    mc.trace = &outcome.trace;
    mc.primary_output = ctx.primary_output();
    mc.cancel = config.cancel;
    mc.account = config.account;
    mc.deadline = config.deadline;
    absl::StatusOr<MetricValue> value = ctx.metric().Score(trainset[i], outcome.prediction, mc);
    if (!value.ok()) {
      a.error = true;
      a.error_message = value.status().ToString();
      return a;
    }
    if (options.metric_threshold.has_value() && *options.metric_threshold != 0) {
      a.success = value->score >= *options.metric_threshold;
    } else {
      a.success = value->passed;
    }
    for (const TraceStep& step : outcome.trace)
      a.steps.emplace_back(step.predictor, DemoFromTrace(step));
    ctx.Record(attempt_key(i, r), AttemptToJson(a));
    return a;
  };

  while (pos < n && accepted < needed) {
    absl::Status stop = ctx.CheckStop();
    if (!stop.ok()) return stop;
    // Speculate on enough upcoming examples to fill the quota at the observed success rate.
    const double rate = (accepted + 1.0) / (attempted + 2.0);
    size_t window = static_cast<size_t>(std::ceil((needed - accepted) / rate * 1.25));
    window = std::clamp<size_t>(window, 1, static_cast<size_t>(std::max(1, ctx.num_threads())));
    window = std::min(window, n - pos);
    std::vector<std::vector<Attempt>> attempts(window, std::vector<Attempt>(rounds));
    for (int r = 0; r < rounds; ++r) {
      std::vector<size_t> todo;
      for (size_t w = 0; w < window; ++w) {
        bool earlier_success = false;
        for (int q = 0; q < r; ++q) earlier_success = earlier_success || attempts[w][q].success;
        if (!earlier_success) todo.push_back(w);
      }
      ParallelFor(todo.size(), ctx.num_threads(),
                  [&](size_t k) { attempts[todo[k]][r] = attempt(pos + todo[k], r); });
    }
    stop = ctx.CheckStop();
    if (!stop.ok()) return stop;
    // Decide in trainset order, exactly as the sequential loop.
    for (size_t w = 0; w < window && accepted < needed; ++w) {
      const size_t i = pos + w;
      bool success = false;
      for (int r = 0; r < rounds && !success; ++r) {
        Attempt& a = attempts[w][r];
        if (a.error) {
          ++errors;
          if (errors >= options.max_errors) {
            return absl::AbortedError(absl::StrCat("bootstrap: ", errors,
                                                   " errors (max_errors=", options.max_errors,
                                                   "); last: ", a.error_message));
          }
          continue;
        }
        if (!a.success) continue;
        success = true;
        std::map<std::string, std::vector<ojson>> per_predictor;
        std::vector<std::string> order;
        for (const auto& [predictor, demo] : a.steps) {
          if (per_predictor.count(predictor) == 0) order.push_back(predictor);
          per_predictor[predictor].push_back(demo);
        }
        for (const std::string& name : order) {
          std::vector<ojson>& demos = per_predictor[name];
          if (demos.size() > 1) {
            // One demo per predictor: a random earlier one or the last, seeded by the demos.
            std::string all;
            for (const ojson& d : demos) all += d.dump();
            PyRandom rng(static_cast<int64_t>(Hash64(all) >> 1));
            ojson chosen =
                rng.Random() < 0.5 ? demos[rng.ChoiceIndex(demos.size() - 1)] : demos.back();
            demos = {chosen};
          }
          for (ojson& d : demos) name2traces[name].push_back(std::move(d));
        }
      }
      if (success) {
        bootstrapped[i] = true;
        ++accepted;
      }
      ++decided;
      ++attempted;
      BootstrapEvent event;
      event.label = label;
      event.example_index = i;
      event.accepted = success;
      event.done = decided;
      event.total = static_cast<int>(n);
      event.accepted_total = accepted;
      event.needed = needed;
      event.last_of_batch = w + 1 == window || accepted >= needed;
      ctx.events().OnBootstrap(event);
    }
    pos += window;
  }

  // Raw demos come from the examples that were not bootstrapped, shuffled.
  std::vector<Example> validation;
  for (size_t i = 0; i < n; ++i) {
    if (!bootstrapped[i]) validation.push_back(trainset[i]);
  }
  PyRandom(ctx.seed()).Shuffle(validation);
  PyRandom rng(ctx.seed());
  Program out = student.ResetCopy();
  for (Predictor& p : out.predictors) {
    std::vector<ojson> augmented = name2traces[p.name];
    if (augmented.size() > static_cast<size_t>(std::max(0, options.max_bootstrapped_demos))) {
      augmented.resize(static_cast<size_t>(std::max(0, options.max_bootstrapped_demos)));
    }
    const int64_t sample_size = std::max<int64_t>(
        0, std::min<int64_t>(options.max_labeled_demos - static_cast<int64_t>(augmented.size()),
                             static_cast<int64_t>(validation.size())));
    validation = rng.Sample(validation, static_cast<size_t>(sample_size));
    p.demos = augmented;
    for (const Example& e : validation) p.demos.push_back(FlatRecord(e, ctx.primary_output()));
  }
  ctx.Record(key, ProgramDemosJson(out));
  ctx.EmitUsage();
  return out;
}

std::unique_ptr<Optimizer> MakeLabeledFewShot(LabeledFewShotOptions options) {
  return std::make_unique<LabeledFewShot>(options);
}
std::unique_ptr<Optimizer> MakeBootstrapFewShot(BootstrapOptions options) {
  return std::make_unique<BootstrapFewShot>(options);
}
std::unique_ptr<Optimizer> MakeRandomSearch(RandomSearchOptions options) {
  return std::make_unique<RandomSearch>(options);
}

absl::StatusOr<LabeledFewShotOptions> LabeledFewShotOptionsFromJson(const ojson& params) {
  ParamReader r(params, "optimizer.labeled_few_shot");
  LabeledFewShotOptions o;
  ASSIGN_OR_RETURN(o.k, r.Int("k", 16, 0));
  if (o.k == 0) o.k = 16;  // proto3 default
  ASSIGN_OR_RETURN(o.sample, r.Bool("sample", true));
  RETURN_IF_ERROR(r.Finish());
  return o;
}

namespace {

absl::Status ReadBootstrap(ParamReader& r, BootstrapOptions* o) {
  ASSIGN_OR_RETURN(o->max_bootstrapped_demos, r.Int("max_bootstrapped_demos", 4, 0));
  ASSIGN_OR_RETURN(o->max_labeled_demos, r.Int("max_labeled_demos", 16, 0));
  ASSIGN_OR_RETURN(o->max_rounds, r.Int("max_rounds", 1, 0));
  if (o->max_rounds == 0) o->max_rounds = 1;
  ASSIGN_OR_RETURN(o->max_errors, r.Int("max_errors", 10, 0));
  if (o->max_errors == 0) o->max_errors = 10;
  ASSIGN_OR_RETURN(o->metric_threshold, r.OptionalDouble("metric_threshold"));
  ASSIGN_OR_RETURN(o->teacher, r.Lm("teacher"));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<BootstrapOptions> BootstrapOptionsFromJson(const ojson& params) {
  ParamReader r(params, "optimizer.bootstrap_few_shot");
  BootstrapOptions o;
  RETURN_IF_ERROR(ReadBootstrap(r, &o));
  RETURN_IF_ERROR(r.Finish());
  return o;
}

absl::StatusOr<RandomSearchOptions> RandomSearchOptionsFromJson(const ojson& params) {
  ParamReader r(params, "optimizer.bootstrap_random_search");
  RandomSearchOptions o;
  RETURN_IF_ERROR(ReadBootstrap(r, &o.bootstrap));
  ASSIGN_OR_RETURN(o.num_candidate_programs, r.Int("num_candidate_programs", 16, 0));
  if (o.num_candidate_programs == 0) o.num_candidate_programs = 16;
  ASSIGN_OR_RETURN(o.stop_at_score, r.OptionalDouble("stop_at_score"));
  ASSIGN_OR_RETURN(o.labeled_sample, r.Bool("labeled_sample", true));
  RETURN_IF_ERROR(r.Finish());
  return o;
}

void RegisterBuiltinOptimizers(OptimizerRegistry& registry) {
  (void)registry.Register(
      "labeled_few_shot", [](const ojson& p) -> absl::StatusOr<std::unique_ptr<Optimizer>> {
        ASSIGN_OR_RETURN(LabeledFewShotOptions o, LabeledFewShotOptionsFromJson(p));
        return MakeLabeledFewShot(o);
      });
  (void)registry.Register("bootstrap_few_shot",
                          [](const ojson& p) -> absl::StatusOr<std::unique_ptr<Optimizer>> {
                            ASSIGN_OR_RETURN(BootstrapOptions o, BootstrapOptionsFromJson(p));
                            return MakeBootstrapFewShot(o);
                          });
  (void)registry.Register("bootstrap_random_search",
                          [](const ojson& p) -> absl::StatusOr<std::unique_ptr<Optimizer>> {
                            ASSIGN_OR_RETURN(RandomSearchOptions o, RandomSearchOptionsFromJson(p));
                            return MakeRandomSearch(o);
                          });
  (void)registry.Register("copro",
                          [](const ojson& p) -> absl::StatusOr<std::unique_ptr<Optimizer>> {
                            ASSIGN_OR_RETURN(CoproOptions o, CoproOptionsFromJson(p));
                            return MakeCopro(o);
                          });
  (void)registry.Register("miprov2",
                          [](const ojson& p) -> absl::StatusOr<std::unique_ptr<Optimizer>> {
                            ASSIGN_OR_RETURN(MiproOptions o, MiproOptionsFromJson(p));
                            return MakeMipro(o);
                          });
  (void)registry.Register("gepa", [](const ojson& p) -> absl::StatusOr<std::unique_ptr<Optimizer>> {
    ASSIGN_OR_RETURN(GepaOptions o, GepaOptionsFromJson(p));
    return MakeGepa(o);
  });
  (void)registry.Register("simba",
                          [](const ojson& p) -> absl::StatusOr<std::unique_ptr<Optimizer>> {
                            ASSIGN_OR_RETURN(SimbaOptions o, SimbaOptionsFromJson(p));
                            return MakeSimba(o);
                          });
}

}  // namespace elexirion::optimizer
