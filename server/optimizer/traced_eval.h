// Traced runs: program runs that keep what reflective optimizers (GEPA, SIMBA) read back —
// each run's prediction, its trace (every predictor call's inputs and outputs), the metric's
// score and feedback text — unlike Evaluate, which keeps scores only.
//
// A batch of (program, example, RunConfig) jobs runs in parallel (ctx.num_threads) and comes
// back in job order, so what the optimizer decides from it does not depend on timing. A
// failing run or metric scores 0 with the error as its feedback (DSPy's failure_score and
// FailedPrediction) and counts toward max_errors (ABORTED beyond it). The whole batch is one
// journal unit: a resumed run takes a finished batch from its checkpoint without a call.
//
// Thread safety: call from the optimizer's coordinating thread.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/optimizer/context.h"
#include "server/optimizer/example.h"
#include "server/optimizer/program.h"
#include "server/optimizer/program_runner.h"

namespace elexirion::optimizer {

struct TracedJob {
  const Program* program = nullptr;
  const Example* example = nullptr;
  RunConfig config;  // the student's, or a resampling LM (SIMBA)
};

struct TracedRun {
  double score = 0;
  std::string feedback;
  ojson prediction = ojson::object();
  std::vector<TraceStep> trace;
  bool error = false;
};

// Runs the jobs; `label` names the unit in the journal key ("gepa", "simba").
absl::StatusOr<std::vector<TracedRun>> RunTraced(OptimizerContext& ctx,
                                                 const std::vector<TracedJob>& jobs,
                                                 const std::string& label);

// The same program on several examples with the student's RunConfig.
absl::StatusOr<std::vector<TracedRun>> RunTracedOn(OptimizerContext& ctx, const Program& program,
                                                   const std::vector<Example>& examples,
                                                   const std::string& label);

double SumScores(const std::vector<TracedRun>& runs);

}  // namespace elexirion::optimizer
