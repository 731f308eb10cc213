// Facade over the continuous-learning metrics. Labels are bounded: `schedule` is one of
// daily, weekly, feedback, prune and `outcome` one of the kOutcome* values below; pipelines
// are deliberately not a label (their number is up to the configuration).
#pragma once

#include <string>

namespace elexirion::learning {

// A run job was submitted (or an earlier identical submission returned).
inline constexpr char kOutcomeSubmitted[] = "submitted";
// The slot was decided without a run (healthy pipeline, too few examples).
inline constexpr char kOutcomeSkipped[] = "skipped";
// A permanent error; the slot is claimed with "failed: ..." and not retried.
inline constexpr char kOutcomeFailed[] = "failed";
// A transient error; the slot stays unclaimed and the next tick tries again.
inline constexpr char kOutcomeRetry[] = "retry";
// Feedback and prune slots that did their work (they submit nothing).
inline constexpr char kOutcomeProcessed[] = "processed";

// Registers elexirion_learning_runs_total on metrics::DefaultRegistry(). Idempotent.
void InitLearningMetrics();
// Counts one slot decision. No-op before InitLearningMetrics().
void RecordLearningRun(const std::string& schedule, const std::string& outcome);

}  // namespace elexirion::learning
