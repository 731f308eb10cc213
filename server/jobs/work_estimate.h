// How far an optimization job is, and how long it has left.
//
// Work is weighed in program runs over the run's datasets: the baseline evaluation (one
// validation set), the optimizer's phase (bootstrapping over the trainset, or its planned
// trials, one validation set each), the final evaluation (one validation set) and, when the
// job compares against a production program, that evaluation (one validation set). Within
// the optimizer's phase the fraction comes from bootstrap progress (examples decided, or demos
// accepted of those needed, whichever is further: bootstrapping stops once it has enough) or
// from trials finished of the planned total. Baseline and final evaluations report nothing
// while they run, so the fraction moves at their ends.
//
// The ETA is a plain rate over this attempt's elapsed time. A resumed attempt takes finished
// work from its checkpoint almost for free, so its first estimates are optimistic; they
// settle as new work is done. Approximate by design: it drives a progress line, not a
// schedule.
//
// Not thread safe: the job's event sink serializes calls.
#pragma once

#include <string_view>

#include "absl/time/time.h"

namespace elexirion::jobs {

class WorkEstimate {
 public:
  struct Plan {
    int validation_size = 0;
    int train_size = 0;
    // Trials the optimizer will run (0: not trial-based, or not known yet).
    int trials_total = 0;
    // A production program is evaluated after the final evaluation.
    bool reference = false;
  };

  explicit WorkEstimate(Plan plan) : plan_(plan) {}

  // The optimizer's phases: "baseline", "bootstrap", "propose", "search", "final",
  // "reference". MIPROv2's "search" detail ("N trials") fixes the trial count when unknown.
  void OnPhase(std::string_view phase, std::string_view detail);
  void OnBootstrap(int done, int total, int accepted, int needed);
  void OnTrialFinished(int trial);
  // Everything is done.
  void Finish() { finished_ = true; }

  // 0..1.
  double fraction() const;
  int trials_total() const { return plan_.trials_total; }
  // Seconds left after `elapsed` of this attempt; 0 when unknown (too little measured) or
  // when done.
  double EtaSeconds(absl::Duration elapsed) const;

 private:
  enum Segment { kBaseline = 0, kOptimizer = 1, kFinal = 2, kReference = 3, kDone = 4 };
  double Weight(int segment) const;
  void Enter(Segment segment);

  Plan plan_;
  Segment segment_ = kBaseline;
  // Fraction of the optimizer's phase done (never decreases).
  double optimizer_done_ = 0;
  bool finished_ = false;
};

}  // namespace elexirion::jobs
