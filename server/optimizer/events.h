// Hooks for the job layer: progress events and checkpoints.
//
// EventSink receives structured progress (the jobs layer turns it into ProgressEvent
// messages). Events are emitted from the optimizer's coordinating thread, one at a time and in
// a deterministic order (bootstrap decisions in trainset order, trials in trial order), never
// from the worker threads that run examples.
//
// CheckpointSink receives the run's progress document after every finished unit of work
// (an evaluation, a bootstrapped demo set, a batch of proposed instructions, the dataset
// summary). Handing the last saved document back as OptimizationHooks::resume_from makes a
// restarted job replay its deterministic algorithm from the start while taking every finished
// unit from the document instead of recomputing it: no LLM calls for finished work, and the
// same program as an uninterrupted run. The document is JSON:
//   {"format": "elexirion.optimizer.checkpoint/1", "fingerprint": "<request hash>",
//    "units": {"<unit key>": <result>, ...}}
// A document whose fingerprint does not match the request is ignored (work starts afresh).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nlohmann/json.hpp"
#include "server/llm/usage.h"

namespace elexirion::optimizer {

struct BootstrapEvent {
  std::string label;         // which bootstrap ("bootstrap", "candidate seed 3", "demo set 4")
  size_t example_index = 0;  // index in the (possibly shuffled) trainset it ran on
  bool accepted = false;     // this example's trace became demos
  int done = 0;              // examples decided so far
  int total = 0;             // examples available
  int accepted_total = 0;    // demos accepted so far
  int needed = 0;            // max_bootstrapped_demos
  // False when more examples decided at the same moment (a window run in parallel) follow at
  // once: a consumer that reports only the totals can skip this one.
  bool last_of_batch = true;
};

// One iteration of an iterative search (GEPA, SIMBA). Scores on the minibatch are sums of
// per-example scores (0..minibatch_size), as GEPA compares them; full_score is percent.
struct IterationEvent {
  std::string optimizer;  // "gepa", "simba"
  int iteration = 0;      // 0-based
  // GEPA: "reflective", "merge", "skipped" (the parent was perfect on the minibatch) or
  // "no_proposal"; SIMBA: "step".
  std::string kind;
  std::vector<int> parents;  // candidate indices the proposal came from
  int candidate = -1;        // index of the candidate added to the pool; -1: none
  bool accepted = false;
  std::vector<std::string> components;  // predictors whose instruction was proposed
  int minibatch_size = 0;
  double minibatch_score_before = 0;  // the parent's (best parent's for a merge)
  double minibatch_score_after = 0;   // the proposal's
  std::optional<double> full_score;   // the accepted candidate on the validation set
  int pool_size = 0;                  // candidates in the pool after the iteration
  int pareto_front_size = 0;          // distinct candidates on the Pareto front
  int64_t metric_calls = 0;           // metric calls so far (GEPA's budget unit)
  int64_t max_metric_calls = 0;       // the budget; 0: bounded by steps instead
};

class EventSink {
 public:
  virtual ~EventSink() = default;
  // A phase of the run began ("baseline", "bootstrap", "propose", "search", "final").
  virtual void OnPhase(std::string_view /*phase*/, std::string_view /*detail*/) {}
  // params: e.g. {"seed": -1} or {"0_predictor_instruction": 2, "0_predictor_demos": 1}.
  virtual void OnTrialStarted(int /*trial*/, const nlohmann::ordered_json& /*params*/) {}
  // score in percent; minibatch: scored on a minibatch rather than the full validation set.
  virtual void OnTrialFinished(int /*trial*/, const nlohmann::ordered_json& /*params*/,
                               double /*score*/, bool /*minibatch*/) {}
  virtual void OnNewBest(int /*trial*/, double /*score*/) {}
  virtual void OnBootstrap(const BootstrapEvent& /*event*/) {}
  virtual void OnIteration(const IterationEvent& /*event*/) {}
  // Usage of the run so far (after every trial and phase).
  virtual void OnUsage(const llm::Usage& /*usage*/) {}
};

class CheckpointSink {
 public:
  virtual ~CheckpointSink() = default;
  virtual void Save(const nlohmann::ordered_json& checkpoint) = 0;
};

}  // namespace elexirion::optimizer
