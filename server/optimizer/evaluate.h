// Evaluate (DSPy's dspy.Evaluate): runs a program on every example of a devset and scores it.
//  - Bounded parallelism: up to num_threads examples in flight (each a program run, so as many
//    LlmClient calls in flight); num_threads <= 1 runs in order on the calling thread.
//  - The metric is called without a trace (evaluation mode: float scores).
//  - A failing program run or metric call scores failure_score and counts as an error; when
//    the errors reach max_errors the evaluation is abandoned with ABORTED ("evaluation
//    cancelled after N errors"), as DSPy raises then.
//  - A cancelled token, a spent budget or a passed deadline stop it with CANCELLED,
//    RESOURCE_EXHAUSTED or DEADLINE_EXCEEDED.
//  - score = round(100 * sum / len(devset), 2), a percentage; results in devset order.
// EvaluateMany evaluates several programs on one devset with one shared pool (all
// (program, example) pairs in flight together); each program has its own error budget.
//
// Thread safety: reentrant; runner and metric must be thread safe (they are).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "server/optimizer/example.h"
#include "server/optimizer/metrics.h"
#include "server/optimizer/program.h"
#include "server/optimizer/program_runner.h"

namespace elexirion::optimizer {

struct EvaluateOptions {
  int num_threads = 8;  // DSPy's settings.num_threads
  int max_errors = 10;  // DSPy's settings.max_errors
  double failure_score = 0;
  // Where a non-object expected_output belongs (Program::PrimaryOutputField()).
  std::string primary_output;
};

struct ExampleResult {
  ojson prediction = ojson::object();
  double score = 0;
  bool passed = false;
  bool error = false;
  std::string error_message;
  std::string feedback;
};

struct EvaluationResult {
  double score = 0;  // percent, 2 decimals
  std::vector<ExampleResult> results;
  int errors = 0;
  int parse_failures = 0;
};

// The status to stop with when the run's cancellation, budget or deadline says so; OK
// otherwise.
absl::Status StopStatus(const RunConfig& config);
// True for the three stop conditions' statuses.
bool IsStopStatus(const absl::Status& status);

double PercentScore(double sum, size_t n);

absl::StatusOr<EvaluationResult> Evaluate(const ProgramRunner& runner, const Metric& metric,
                                          const Program& program,
                                          const std::vector<Example>& devset,
                                          const RunConfig& config, const EvaluateOptions& options);

std::vector<absl::StatusOr<EvaluationResult>> EvaluateMany(
    const ProgramRunner& runner, const Metric& metric, const std::vector<const Program*>& programs,
    const std::vector<Example>& devset, const RunConfig& config, const EvaluateOptions& options);

}  // namespace elexirion::optimizer
