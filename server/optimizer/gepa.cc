// GEPA (Agrawal et al. 2025, arXiv 2507.19457) as DSPy 3.3.1's dspy.GEPA runs the gepa engine:
// reflective evolution of the predictors' instructions (demos untouched).
//
// A pool of candidates, seeded with the student, each scored per validation instance. Each
// iteration: select a parent (Pareto: among the candidates best on at least one instance, by
// how many they lead; or the current best), take the next minibatch of the trainset (epoch-
// shuffled, padded to whole batches), run the parent on it with traces; skip when it is perfect
// there (skip_perfect_score); pick the predictor(s) to update (round robin per candidate, or
// all); build each one's reflective dataset (inputs, generated outputs, metric feedback per
// trajectory) and ask the reflection LM for a new instruction; run the child on the same
// minibatch and accept it only if its sum is strictly higher; an accepted child is scored on
// the whole validation set and joins the pool. After an iteration that found a new candidate
// a merge may be tried (use_merge): two front candidates with a common ancestor are crossed
// over predictor by predictor, tried on a subsample of up to 5 validation instances and kept
// when not worse than either parent there. The budget is in metric calls (one per program run
// scored), counted as gepa counts them. The result is the candidate with the best mean
// validation score.
//
// Parallel but faithful: the engine is sequential; minibatch runs, validation passes and the
// reflection calls of several predictors run in parallel and are read back in order, so the
// same seed and answers give the same program at any concurrency. While no candidate is
// added, the parents' minibatch runs of the next iterations are fetched ahead together
// (Prefetch). Random choices use two
// PyRandom(seed) streams, as DSPy (the engine's, shared by selection, sampling and merge; the
// adapter's, choosing a predictor call in a trajectory). Every unit (traced minibatch run,
// reflection, validation pass) is journaled: a resumed run replays the algorithm and repeats
// no finished call.
#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"
#include "server/optimizer/optimizers.h"
#include "server/optimizer/parallel.h"
#include "server/optimizer/pareto.h"
#include "server/optimizer/py_format.h"
#include "server/optimizer/py_random.h"
#include "server/optimizer/reflection.h"
#include "server/optimizer/traced_eval.h"

namespace elexirion::optimizer {
namespace {

struct Candidate {
  Program program;
  std::vector<double> val_scores;
  double aggregate = 0;  // mean per-instance score
  std::vector<int> parents;
  size_t next_component = 0;  // round robin
};

// gepa's EpochShuffledBatchSampler.
class BatchSampler {
 public:
  BatchSampler(size_t trainset_size, size_t minibatch_size)
      : n_(trainset_size), size_(minibatch_size) {}

  std::vector<size_t> Next(int iteration, PyRandom& rng) {
    const size_t base = static_cast<size_t>(iteration) * size_;
    const int epoch = epoch_ < 0 || shuffled_.empty()
                          ? 0
                          : static_cast<int>(base / std::max<size_t>(shuffled_.size(), 1));
    if (shuffled_.empty() || epoch > epoch_) {
      epoch_ = epoch;
      Refresh(rng);
    }
    const size_t start = base % shuffled_.size();
    std::vector<size_t> out;
    for (size_t k = start; k < std::min(start + size_, shuffled_.size()); ++k) {
      out.push_back(shuffled_[k]);
    }
    return out;
  }

 private:
  void Refresh(PyRandom& rng) {
    shuffled_.clear();
    for (size_t i = 0; i < n_; ++i) shuffled_.push_back(i);
    rng.Shuffle(shuffled_);
    // Pad to whole minibatches with the least used ids (first seen wins a tie).
    std::vector<size_t> order = shuffled_;
    std::map<size_t, int> freq;
    for (size_t id : shuffled_) ++freq[id];
    const size_t pad = (size_ - shuffled_.size() % size_) % size_;
    for (size_t p = 0; p < pad; ++p) {
      size_t least = order.front();
      for (size_t id : order) {
        if (freq[id] < freq[least]) least = id;
      }
      shuffled_.push_back(least);
      ++freq[least];
    }
  }

  size_t n_;
  size_t size_;
  int epoch_ = -1;
  std::vector<size_t> shuffled_;
};

std::set<int> Ancestors(int c, const std::vector<Candidate>& pool) {
  std::set<int> out;
  std::vector<int> todo = pool[static_cast<size_t>(c)].parents;
  while (!todo.empty()) {
    const int p = todo.back();
    todo.pop_back();
    if (!out.insert(p).second) continue;
    for (int q : pool[static_cast<size_t>(p)].parents) todo.push_back(q);
  }
  return out;
}

const std::string& Instruction(const Candidate& c, size_t predictor) {
  return c.program.predictors[predictor].signature.instructions;
}

struct MergeProposal {
  Program program;
  int id1 = 0;
  int id2 = 0;
  int ancestor = 0;
};

class Gepa final : public Optimizer {
 public:
  explicit Gepa(GepaOptions options) : options_(std::move(options)) {}
  std::string name() const override { return "gepa"; }

  absl::StatusOr<CompileResult> Compile(const Program& student, OptimizerContext& ctx) override {
    const std::vector<Example>& trainset = ctx.trainset();
    const std::vector<Example>& valset = ctx.valset().empty() ? trainset : ctx.valset();
    if (trainset.empty())
      return absl::InvalidArgumentError("optimizer.gepa: the trainset is empty");
    const size_t P = student.predictors.size();
    if (P == 0) return absl::InvalidArgumentError("optimizer.gepa: the program has no predictor");
    const int64_t budget = Budget(P, trainset.size(), valset.size());
    LmSettings reflection_lm = ctx.prompt_lm();
    reflection_lm.temperature = 1.0;
    reflection_lm = MergeLm(reflection_lm, options_.reflection_lm);

    PyRandom rng(ctx.seed());          // gepa's engine rng
    PyRandom adapter_rng(ctx.seed());  // DspyAdapter's rng
    BatchSampler sampler(trainset.size(), static_cast<size_t>(options_.reflection_minibatch_size));
    ctx.events().OnPhase("search", absl::StrCat("GEPA, budget ", budget, " metric calls"));

    pool_.clear();
    metric_calls_ = 0;
    merges_performed_.clear();
    {
      Candidate seed;
      seed.program = student;
      const int trial = ctx.StartTrial(ojson{{"candidate", 0}});
      ASSIGN_OR_RETURN(seed.val_scores, FullScores(ctx, seed.program, valset));
      metric_calls_ += static_cast<int64_t>(valset.size());
      seed.aggregate = Mean(seed.val_scores);
      const double percent = Percent(seed.val_scores);
      ctx.FinishTrial(trial, ojson{{"candidate", 0}}, percent, false,
                      static_cast<int>(valset.size()));
      ctx.OfferBest(seed.program, percent, trial);
      pool_.push_back(std::move(seed));
    }

    // Speculation (see Prefetch): parent minibatch runs of upcoming iterations.
    std::map<std::string, std::vector<TracedRun>> prefetched;
    int window = 1;
    const int max_window =
        std::max(1, ctx.num_threads() / std::max(1, options_.reflection_minibatch_size));
    int merges_due = 0;
    int merges_tested = 0;
    bool last_found_new = false;
    for (int i = 0; metric_calls_ < budget; ++i) {
      RETURN_IF_ERROR(ctx.CheckStop());
      IterationEvent event;
      event.optimizer = "gepa";
      event.iteration = i;
      event.max_metric_calls = budget;
      if (options_.use_merge && merges_due > 0 && last_found_new) {
        last_found_new = false;
        std::optional<MergeProposal> merge = ProposeMerge(rng);
        if (merge.has_value()) {
          ASSIGN_OR_RETURN(bool accepted, TryMerge(ctx, *merge, valset, rng, event));
          if (accepted) {
            --merges_due;
            ++merges_tested;
          }
          prefetched.clear();  // the merge drew from the engine rng
          window = 1;
          Emit(ctx, event);
          continue;
        }
      }
      last_found_new = false;

      // Reflective mutation.
      // No speculation past the budget: iterations beyond it never run.
      const int64_t batch_size = options_.reflection_minibatch_size;
      const int left = static_cast<int>((budget - metric_calls_ + batch_size - 1) / batch_size);
      RETURN_IF_ERROR(Prefetch(ctx, i, rng, sampler, trainset, std::min(window, left), prefetched));
      const size_t parent = SelectParent(rng);
      event.parents = {static_cast<int>(parent)};
      const std::vector<size_t> ids = sampler.Next(i, rng);
      std::vector<Example> batch;
      for (size_t k : ids) batch.push_back(trainset[k]);
      event.minibatch_size = static_cast<int>(batch.size());
      std::vector<TracedRun> parent_runs;
      if (auto it = prefetched.find(SpeculationKey(parent, ids)); it != prefetched.end()) {
        parent_runs = std::move(it->second);
        prefetched.erase(it);
      } else {
        ASSIGN_OR_RETURN(parent_runs, RunTracedOn(ctx, pool_[parent].program, batch, "gepa"));
      }
      // The pool stays as it is unless this iteration adds a candidate: widen the window.
      window = std::min(window * 2, max_window);
      metric_calls_ += static_cast<int64_t>(batch.size());
      event.minibatch_score_before = SumScores(parent_runs);
      if (options_.skip_perfect_score &&
          std::all_of(parent_runs.begin(), parent_runs.end(),
                      [&](const TracedRun& r) { return r.score >= options_.perfect_score; })) {
        event.kind = "skipped";
        Emit(ctx, event);
        continue;
      }
      std::vector<size_t> components;
      if (options_.component_selector == GepaOptions::Components::kAll) {
        for (size_t p = 0; p < P; ++p) components.push_back(p);
      } else {
        components.push_back(pool_[parent].next_component);
        pool_[parent].next_component = (pool_[parent].next_component + 1) % P;
      }
      // Reflective datasets, in component order (the adapter rng's draws are sequential).
      std::vector<size_t> proposed;
      std::vector<std::vector<ReflectionRecord>> datasets;
      for (size_t c : components) {
        std::vector<ReflectionRecord> records =
            ReflectiveDataset(pool_[parent].program.predictors[c].name, parent_runs, adapter_rng);
        if (records.empty()) continue;
        proposed.push_back(c);
        datasets.push_back(std::move(records));
      }
      for (size_t c : proposed) event.components.push_back(student.predictors[c].name);
      if (proposed.empty()) {
        event.kind = "no_proposal";
        Emit(ctx, event);
        continue;
      }
      std::vector<absl::StatusOr<std::string>> instructions(proposed.size(),
                                                            absl::UnknownError("not run"));
      ParallelFor(proposed.size(), ctx.num_threads(), [&](size_t k) {
        instructions[k] = ProposeInstruction(
            ctx, reflection_lm, Instruction(pool_[parent], proposed[k]), datasets[k],
            absl::StrCat("gepa/", ctx.seed(), "/", i, "/", proposed[k]));
      });
      Candidate child;
      child.program = pool_[parent].program;
      child.parents = {static_cast<int>(parent)};
      child.next_component = pool_[parent].next_component;
      bool any = false;
      for (size_t k = 0; k < proposed.size(); ++k) {
        if (!instructions[k].ok()) {
          if (IsStopStatus(instructions[k].status())) return instructions[k].status();
          continue;  // gepa logs a failed proposal and moves on
        }
        child.program.predictors[proposed[k]].signature.instructions = *instructions[k];
        any = true;
      }
      if (!any) {
        event.kind = "no_proposal";
        Emit(ctx, event);
        continue;
      }
      event.kind = "reflective";
      const ojson params = ojson{{"iteration", i}, {"parent", parent}};
      const int trial = ctx.StartTrial(params);
      ASSIGN_OR_RETURN(std::vector<TracedRun> child_runs,
                       RunTracedOn(ctx, child.program, batch, "gepa"));
      metric_calls_ += static_cast<int64_t>(batch.size());
      event.minibatch_score_after = SumScores(child_runs);
      ctx.FinishTrial(trial, params, PercentOfSum(event.minibatch_score_after, batch.size()), true,
                      static_cast<int>(batch.size()));
      if (!(event.minibatch_score_after > event.minibatch_score_before)) {
        Emit(ctx, event);
        continue;
      }
      ASSIGN_OR_RETURN(int index, AddCandidate(ctx, std::move(child), valset, params, event));
      (void)index;
      prefetched.clear();  // a new candidate changes every later selection
      window = 1;
      if (options_.use_merge) {
        last_found_new = true;
        if (merges_tested < options_.max_merge_invocations) ++merges_due;
      }
      Emit(ctx, event);
    }

    CompileResult result;
    const size_t best = BestIndex();
    result.program = pool_[best].program;
    result.score = Percent(pool_[best].val_scores);
    for (size_t c = 0; c < pool_.size(); ++c) {
      ojson parents = ojson::array();
      for (int p : pool_[c].parents) parents.push_back(p);
      result.candidates.push_back(CandidateRecord{Percent(pool_[c].val_scores),
                                                  ojson{{"candidate", c}, {"parents", parents}},
                                                  pool_[c].program});
    }
    std::stable_sort(
        result.candidates.begin(), result.candidates.end(),
        [](const CandidateRecord& a, const CandidateRecord& b) { return a.score > b.score; });
    return result;
  }

 private:
  size_t SelectParent(PyRandom& rng) const {
    return options_.candidate_selection == GepaOptions::Selection::kPareto
               ? SelectParetoCandidate(ScoreMatrix(), Aggregates(), rng)
               : BestIndex();
  }

  static std::string SpeculationKey(size_t parent, const std::vector<size_t>& ids) {
    std::string key = absl::StrCat(parent, ":");
    for (size_t id : ids) absl::StrAppend(&key, id, ",");
    return key;
  }

  // Speculative prefetch, as BootstrapFewShot speculates on upcoming examples: while no
  // candidate is added the pool, and so every parent selection and minibatch of the next
  // iterations, follows from copies of the rng and sampler alone. The parent runs of the next
  // `window` iterations go out together (one journal unit); an iteration that adds a candidate
  // discards what is left. The program is the sequential one; at most the discarded runs are
  // extra calls (none with one thread: the window stays 1).
  absl::Status Prefetch(OptimizerContext& ctx, int i, const PyRandom& rng,
                        const BatchSampler& sampler, const std::vector<Example>& trainset,
                        int window, std::map<std::string, std::vector<TracedRun>>& prefetched) {
    if (window <= 1) return absl::OkStatus();
    PyRandom r = rng;
    BatchSampler s = sampler;
    std::vector<TracedJob> jobs;
    std::vector<std::pair<std::string, size_t>> spans;  // key, first job
    for (int k = 0; k < window; ++k) {
      const size_t parent = SelectParent(r);
      const std::vector<size_t> ids = s.Next(i + k, r);
      const std::string key = SpeculationKey(parent, ids);
      // Refill only when this iteration's runs are missing, a window at a time.
      if (k == 0 && prefetched.count(key) != 0) return absl::OkStatus();
      bool known = prefetched.count(key) != 0;
      for (const auto& span : spans) known = known || span.first == key;
      if (known) continue;
      spans.emplace_back(key, jobs.size());
      for (size_t id : ids)
        jobs.push_back(TracedJob{&pool_[parent].program, &trainset[id], ctx.student()});
    }
    if (spans.empty()) return absl::OkStatus();
    ASSIGN_OR_RETURN(std::vector<TracedRun> runs, RunTraced(ctx, jobs, "gepa"));
    for (size_t k = 0; k < spans.size(); ++k) {
      const size_t end = k + 1 < spans.size() ? spans[k + 1].second : runs.size();
      prefetched[spans[k].first] = std::vector<TracedRun>(
          runs.begin() + static_cast<long>(spans[k].second), runs.begin() + static_cast<long>(end));
    }
    return absl::OkStatus();
  }

  int64_t Budget(size_t predictors, size_t train, size_t val) const {
    if (options_.max_metric_calls.has_value()) return *options_.max_metric_calls;
    if (options_.max_full_evals.has_value()) {
      return static_cast<int64_t>(*options_.max_full_evals) * static_cast<int64_t>(train + val);
    }
    return GepaAutoBudget(options_.auto_mode, predictors, val);
  }

  static double Mean(const std::vector<double>& v) {
    double sum = 0;
    for (double x : v) sum += x;
    return v.empty() ? 0 : sum / static_cast<double>(v.size());
  }
  static double PercentOfSum(double sum, size_t n) { return PercentScore(sum, n); }
  static double Percent(const std::vector<double>& v) {
    double sum = 0;
    for (double x : v) sum += x;
    return PercentScore(sum, v.size());
  }

  std::vector<std::vector<double>> ScoreMatrix() const {
    std::vector<std::vector<double>> m;
    for (const Candidate& c : pool_) m.push_back(c.val_scores);
    return m;
  }
  std::vector<double> Aggregates() const {
    std::vector<double> a;
    for (const Candidate& c : pool_) a.push_back(c.aggregate);
    return a;
  }
  // First candidate with the highest aggregate.
  size_t BestIndex() const {
    size_t best = 0;
    for (size_t c = 1; c < pool_.size(); ++c) {
      if (pool_[c].aggregate > pool_[best].aggregate) best = c;
    }
    return best;
  }

  // Per-instance validation scores through the memoized, journaled evaluation.
  absl::StatusOr<std::vector<double>> FullScores(OptimizerContext& ctx, const Program& program,
                                                 const std::vector<Example>& valset) {
    ASSIGN_OR_RETURN(EvaluationResult eval, ctx.Evaluate(program, valset));
    std::vector<double> scores;
    for (const ExampleResult& r : eval.results) scores.push_back(r.error ? 0.0 : r.score);
    return scores;
  }

  // Scores the candidate on the validation set and adds it to the pool.
  absl::StatusOr<int> AddCandidate(OptimizerContext& ctx, Candidate candidate,
                                   const std::vector<Example>& valset, const ojson& params,
                                   IterationEvent& event) {
    const int trial = ctx.StartTrial(params);
    ASSIGN_OR_RETURN(candidate.val_scores, FullScores(ctx, candidate.program, valset));
    metric_calls_ += static_cast<int64_t>(valset.size());
    candidate.aggregate = Mean(candidate.val_scores);
    const double percent = Percent(candidate.val_scores);
    ctx.FinishTrial(trial, params, percent, false, static_cast<int>(valset.size()));
    ctx.OfferBest(candidate.program, percent, trial);
    pool_.push_back(std::move(candidate));
    event.accepted = true;
    event.candidate = static_cast<int>(pool_.size() - 1);
    event.full_score = percent;
    return event.candidate;
  }

  void Emit(OptimizerContext& ctx, IterationEvent& event) const {
    event.pool_size = static_cast<int>(pool_.size());
    event.pareto_front_size = static_cast<int>(ParetoFrontSize(ScoreMatrix(), Aggregates()));
    event.metric_calls = metric_calls_;
    ctx.events().OnIteration(event);
    ctx.EmitUsage();
  }

  // DSPy's make_reflective_dataset for one predictor: per trajectory one call of it (a random
  // one when it ran several times), with the trajectory's feedback.
  static std::vector<ReflectionRecord> ReflectiveDataset(const std::string& predictor,
                                                         const std::vector<TracedRun>& runs,
                                                         PyRandom& rng) {
    std::vector<ReflectionRecord> out;
    for (const TracedRun& run : runs) {
      std::vector<const TraceStep*> calls;
      for (const TraceStep& s : run.trace) {
        if (s.predictor == predictor) calls.push_back(&s);
      }
      if (calls.empty()) continue;
      const TraceStep* chosen = calls[rng.ChoiceIndex(calls.size())];
      ReflectionRecord r;
      r.inputs = chosen->inputs;
      r.outputs = chosen->outputs;
      r.feedback = run.feedback.empty() ? absl::StrCat("This trajectory got a score of ",
                                                       PyFloatRepr(run.score), ".")
                                        : run.feedback;
      out.push_back(std::move(r));
    }
    return out;
  }

  // gepa's MergeProposer: two non-dominated candidates with a common ancestor that neither
  // underperforms, crossed over predictor by predictor.
  std::optional<MergeProposal> ProposeMerge(PyRandom& rng) {
    if (pool_.size() < 3) return std::nullopt;
    std::vector<size_t> front;
    {
      std::set<size_t> distinct;
      for (const auto& f : RemoveDominated(ParetoFronts(ScoreMatrix()), Aggregates())) {
        distinct.insert(f.begin(), f.end());
      }
      front.assign(distinct.begin(), distinct.end());
    }
    if (front.size() < 2) return std::nullopt;
    const size_t P = pool_[0].program.predictors.size();
    for (int attempt = 0; attempt < 10; ++attempt) {
      std::optional<std::tuple<int, int, int>> triple;
      for (int pair_attempt = 0; pair_attempt < 10 && !triple.has_value(); ++pair_attempt) {
        std::vector<size_t> picked = rng.SampleIndices(front.size(), 2);
        int i = static_cast<int>(front[picked[0]]);
        int j = static_cast<int>(front[picked[1]]);
        if (i == j) continue;
        if (j < i) std::swap(i, j);
        const std::set<int> ai = Ancestors(i, pool_);
        const std::set<int> aj = Ancestors(j, pool_);
        if (ai.count(j) != 0 || aj.count(i) != 0) continue;
        std::vector<int> common;
        for (int a : ai) {
          if (aj.count(a) == 0) continue;
          if (merges_performed_.count({i, j, a}) != 0) continue;
          const double sa = pool_[static_cast<size_t>(a)].aggregate;
          if (sa > pool_[static_cast<size_t>(i)].aggregate ||
              sa > pool_[static_cast<size_t>(j)].aggregate) {
            continue;
          }
          bool desirable = false;
          for (size_t p = 0; p < P; ++p) {
            const std::string& x = Instruction(pool_[static_cast<size_t>(a)], p);
            const std::string& y1 = Instruction(pool_[static_cast<size_t>(i)], p);
            const std::string& y2 = Instruction(pool_[static_cast<size_t>(j)], p);
            if ((x == y1 || x == y2) && y1 != y2) desirable = true;
          }
          if (desirable) common.push_back(a);
        }
        if (common.empty()) continue;
        std::vector<double> weights;
        for (int a : common) weights.push_back(pool_[static_cast<size_t>(a)].aggregate);
        triple = std::make_tuple(i, j, common[rng.WeightedChoiceIndex(weights)]);
      }
      if (!triple.has_value()) continue;
      const auto [i, j, a] = *triple;
      const Candidate& ci = pool_[static_cast<size_t>(i)];
      const Candidate& cj = pool_[static_cast<size_t>(j)];
      MergeProposal m{pool_[static_cast<size_t>(a)].program, i, j, a};
      std::vector<int> sources;
      for (size_t p = 0; p < P; ++p) {
        const std::string& x = Instruction(pool_[static_cast<size_t>(a)], p);
        const std::string& y1 = Instruction(ci, p);
        const std::string& y2 = Instruction(cj, p);
        int source = i;
        if ((x == y1 || x == y2) && y1 != y2) {
          source = x == y1 ? j : i;
        } else if (x != y1 && x != y2) {
          source = ci.aggregate > cj.aggregate   ? i
                   : cj.aggregate > ci.aggregate ? j
                                                 : (rng.ChoiceIndex(2) == 0 ? i : j);
        }
        m.program.predictors[p].signature.instructions =
            Instruction(pool_[static_cast<size_t>(source)], p);
        sources.push_back(source);
      }
      merges_performed_.insert({i, j, a});
      std::string signature = absl::StrCat(i, ",", j);
      for (int s : sources) absl::StrAppend(&signature, ",", s);
      if (!merged_descriptions_.insert(signature).second) continue;
      return m;
    }
    return std::nullopt;
  }

  // Tries a merge on a validation subsample (gepa's select_eval_subsample_for_merged_program);
  // kept when not worse than the better parent there.
  absl::StatusOr<bool> TryMerge(OptimizerContext& ctx, const MergeProposal& m,
                                const std::vector<Example>& valset, PyRandom& rng,
                                IterationEvent& event) {
    event.kind = "merge";
    event.parents = {m.id1, m.id2};
    const std::vector<double>& s1 = pool_[static_cast<size_t>(m.id1)].val_scores;
    const std::vector<double>& s2 = pool_[static_cast<size_t>(m.id2)].val_scores;
    constexpr size_t kSubsample = 5;
    std::vector<size_t> better1, better2, ties;
    for (size_t v = 0; v < s1.size(); ++v) {
      (s1[v] > s2[v] ? better1 : s2[v] > s1[v] ? better2 : ties).push_back(v);
    }
    const size_t each = std::max<size_t>(1, (kSubsample + 2) / 3);
    std::vector<size_t> selected;
    for (const std::vector<size_t>* bucket : {&better1, &better2, &ties}) {
      if (selected.size() >= kSubsample) break;
      std::vector<size_t> available;
      for (size_t v : *bucket) {
        if (std::find(selected.begin(), selected.end(), v) == selected.end())
          available.push_back(v);
      }
      const size_t take = std::min({available.size(), each, kSubsample - selected.size()});
      for (size_t k : rng.SampleIndices(available.size(), take)) selected.push_back(available[k]);
    }
    if (selected.size() < kSubsample) {
      std::vector<size_t> unused;
      for (size_t v = 0; v < s1.size(); ++v) {
        if (std::find(selected.begin(), selected.end(), v) == selected.end()) unused.push_back(v);
      }
      const size_t remaining = kSubsample - selected.size();
      if (unused.size() >= remaining) {
        for (size_t k : rng.SampleIndices(unused.size(), remaining)) selected.push_back(unused[k]);
      } else {
        for (size_t r = 0; r < remaining; ++r) {
          selected.push_back(static_cast<size_t>(rng.Random() * static_cast<double>(s1.size())));
        }
      }
    }
    std::vector<Example> sub;
    double sum1 = 0;
    double sum2 = 0;
    for (size_t v : selected) {
      sub.push_back(valset[v]);
      sum1 += s1[v];
      sum2 += s2[v];
    }
    event.minibatch_size = static_cast<int>(sub.size());
    event.minibatch_score_before = std::max(sum1, sum2);
    ASSIGN_OR_RETURN(std::vector<TracedRun> runs, RunTracedOn(ctx, m.program, sub, "gepa"));
    metric_calls_ += static_cast<int64_t>(sub.size());
    event.minibatch_score_after = SumScores(runs);
    if (event.minibatch_score_after < event.minibatch_score_before) return false;
    Candidate merged;
    merged.program = m.program;
    merged.parents = {m.id1, m.id2};
    merged.next_component = std::max(pool_[static_cast<size_t>(m.id1)].next_component,
                                     pool_[static_cast<size_t>(m.id2)].next_component);
    const ojson params = ojson{{"iteration", event.iteration}, {"merge", {m.id1, m.id2}}};
    RETURN_IF_ERROR(AddCandidate(ctx, std::move(merged), valset, params, event).status());
    return true;
  }

  GepaOptions options_;
  std::vector<Candidate> pool_;
  int64_t metric_calls_ = 0;
  std::set<std::tuple<int, int, int>> merges_performed_;
  std::set<std::string> merged_descriptions_;
};

absl::StatusOr<GepaOptions::Auto> ParseAuto(const std::string& mode) {
  if (mode.empty() || mode == "AUTO_UNSPECIFIED") return GepaOptions::Auto::kNone;
  if (mode == "light" || mode == "AUTO_LIGHT") return GepaOptions::Auto::kLight;
  if (mode == "medium" || mode == "AUTO_MEDIUM") return GepaOptions::Auto::kMedium;
  if (mode == "heavy" || mode == "AUTO_HEAVY") return GepaOptions::Auto::kHeavy;
  return absl::InvalidArgumentError(
      absl::StrCat("optimizer.gepa.auto: unknown mode \"", mode, "\" (light, medium, heavy)"));
}

}  // namespace

int64_t GepaAutoBudget(GepaOptions::Auto mode, size_t predictors, size_t valset_size) {
  const int n = mode == GepaOptions::Auto::kHeavy    ? 18
                : mode == GepaOptions::Auto::kMedium ? 12
                                                     : 6;
  const int64_t trials = static_cast<int64_t>(std::max(
      2.0 * (static_cast<double>(predictors) * 2) * std::log2(static_cast<double>(n)), 1.5 * n));
  const int64_t v = static_cast<int64_t>(valset_size);
  constexpr int64_t kMinibatch = 35;
  constexpr int64_t kFullEvalSteps = 5;
  int64_t total = v + 5 * n + trials * kMinibatch;
  const int64_t periodic = (trials + 1) / kFullEvalSteps + 1;
  const int64_t extra = trials < kFullEvalSteps ? 1 : 0;
  total += (periodic + extra) * v;
  return total;
}

std::unique_ptr<Optimizer> MakeGepa(GepaOptions options) {
  return std::make_unique<Gepa>(std::move(options));
}

absl::StatusOr<GepaOptions> GepaOptionsFromJson(const ojson& params) {
  ParamReader r(params, "optimizer.gepa");
  GepaOptions o;
  ASSIGN_OR_RETURN(std::string mode, r.String("auto", ""));
  ASSIGN_OR_RETURN(o.auto_mode, ParseAuto(mode));
  ASSIGN_OR_RETURN(int full_evals, r.Int("max_full_evals", 0, 0));
  ASSIGN_OR_RETURN(int metric_calls, r.Int("max_metric_calls", 0, 0));
  if (full_evals > 0) o.max_full_evals = full_evals;
  if (metric_calls > 0) o.max_metric_calls = metric_calls;
  const int budgets = (o.auto_mode != GepaOptions::Auto::kNone ? 1 : 0) + (full_evals > 0 ? 1 : 0) +
                      (metric_calls > 0 ? 1 : 0);
  if (budgets != 1) {
    return absl::InvalidArgumentError(
        "optimizer.gepa.auto: set exactly one budget: auto (light, medium, heavy), "
        "max_full_evals or max_metric_calls");
  }
  ASSIGN_OR_RETURN(o.reflection_minibatch_size, r.Int("reflection_minibatch_size", 3, 0));
  if (o.reflection_minibatch_size == 0) o.reflection_minibatch_size = 3;
  ASSIGN_OR_RETURN(std::string selection, r.String("candidate_selection_strategy", "pareto"));
  if (selection == "current_best" || selection == "CANDIDATE_SELECTION_CURRENT_BEST") {
    o.candidate_selection = GepaOptions::Selection::kCurrentBest;
  } else if (selection != "pareto" && selection != "CANDIDATE_SELECTION_PARETO" &&
             selection != "CANDIDATE_SELECTION_UNSPECIFIED" && !selection.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("optimizer.gepa.candidate_selection_strategy: unknown strategy \"", selection,
                     "\" (pareto, current_best)"));
  }
  ASSIGN_OR_RETURN(std::string components, r.String("component_selector", "round_robin"));
  if (components == "all" || components == "COMPONENT_SELECTOR_ALL") {
    o.component_selector = GepaOptions::Components::kAll;
  } else if (components != "round_robin" && components != "COMPONENT_SELECTOR_ROUND_ROBIN" &&
             components != "COMPONENT_SELECTOR_UNSPECIFIED" && !components.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("optimizer.gepa.component_selector: unknown selector \"", components,
                     "\" (round_robin, all)"));
  }
  ASSIGN_OR_RETURN(o.skip_perfect_score, r.Bool("skip_perfect_score", true));
  ASSIGN_OR_RETURN(o.perfect_score, r.Double("perfect_score", 1.0));
  if (o.perfect_score == 0) o.perfect_score = 1.0;
  if (o.perfect_score < 0 || o.perfect_score > 1) {
    return absl::InvalidArgumentError("optimizer.gepa.perfect_score: must be within (0, 1]");
  }
  ASSIGN_OR_RETURN(o.use_merge, r.Bool("use_merge", true));
  ASSIGN_OR_RETURN(o.max_merge_invocations, r.Int("max_merge_invocations", 5, 0));
  ASSIGN_OR_RETURN(o.reflection_lm, r.Lm("reflection_lm"));
  RETURN_IF_ERROR(r.Finish());
  return o;
}

}  // namespace elexirion::optimizer
