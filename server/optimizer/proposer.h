// Instruction proposal for COPRO and MIPROv2: the prompt-model signatures (same field names
// and roles as DSPy's BasicGenerateInstruction, GenerateInstructionGivenAttempts,
// DatasetDescriptor(+WithPriorObservations), ObservationSummarizer, DescribeProgram,
// DescribeModule and GenerateSingleModuleInstruction; instruction texts in our own words),
// n-completion sampling, the dataset summary and MIPROv2's grounded proposer.
//
// n completions are n calls with distinct rollout ids (given by the caller, derived from the
// seed and position) at the requested temperature, run in parallel; completions that do not
// parse are dropped (counted in `failures`).
//
// Thread safety: functions are reentrant; the context's coordinating thread calls them.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/optimizer/adapter.h"
#include "server/optimizer/context.h"
#include "server/optimizer/predict.h"
#include "server/optimizer/py_random.h"

namespace elexirion::optimizer {

AdapterSignature BasicGenerateInstructionSignature();
AdapterSignature GenerateInstructionGivenAttemptsSignature();

// Calls `signature` with `inputs` n times (rollout ids rollout_prefix + "/" + k) and returns the
// parsed outputs of the completions that parsed, in k order. Journaled under a key of the
// request, so a resumed run does not ask again. A stop condition returns its status.
absl::StatusOr<std::vector<ojson>> SampleCompletions(
    OptimizerContext& ctx, const AdapterSignature& signature, const ojson& inputs, int n,
    const LmSettings& lm, const std::string& rollout_prefix, int* failures = nullptr);

// MIPROv2's GroundedProposer inputs.
struct GroundedProposerOptions {
  bool program_aware = true;
  bool data_aware = true;
  bool tip_aware = true;
  bool fewshot_aware = true;
  int view_data_batch_size = 10;
  int num_demos_in_context = 3;
  double init_temperature = 1.0;
  LmSettings prompt_lm;
};

// The dataset summary (DatasetDescriptor over the first batch, up to 9 more batches with prior
// observations, 5 "COMPLETE" answers stop early, then ObservationSummarizer). Journaled.
absl::StatusOr<std::string> DatasetSummary(OptimizerContext& ctx,
                                           const std::vector<Example>& trainset,
                                           int view_data_batch_size, const LmSettings& lm);

// Pseudo-code of the program for the program-aware proposer: the pipeline's steps with their
// predictor modules and signatures.
std::string ProgramCode(const pipeline::Pipeline& pipeline, const Program& program);

// Proposes instruction candidates per predictor: for each predictor i and demo set j <
// min(N, number of demo sets) one GenerateSingleModuleInstruction call (after DescribeProgram
// and DescribeModule when program-aware) with a random tip and a rollout id drawn from `rng`
// (in DSPy's order). Returns candidates[i] (candidate 0 is NOT yet replaced by the original
// instruction; MIPROv2 does that).
absl::StatusOr<std::vector<std::vector<std::string>>> ProposeInstructions(
    OptimizerContext& ctx, const Program& program, const std::vector<Example>& trainset,
    const std::vector<std::vector<std::vector<ojson>>>& demo_candidates, int num_candidates,
    const GroundedProposerOptions& options, PyRandom& rng);

}  // namespace elexirion::optimizer
