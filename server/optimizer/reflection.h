// GEPA's reflective instruction proposal (gepa's InstructionProposalSignature as DSPy's GEPA
// uses it by default; the prompt text is in our own words).
//
// The reflection LM gets the predictor's current instruction and, for each trajectory of the
// minibatch, the predictor's inputs, its generated outputs and the metric's feedback, rendered
// as markdown ("# Example i", "## Inputs", "### <field>", "## Generated Outputs",
// "## Feedback"), and answers with a new instruction between ``` fences. The answer's text
// between the first and the last fence (a language tag on the opening fence dropped) is the
// new instruction; without fences the whole answer, stripped.
//
// Thread safety: functions are reentrant.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/optimizer/context.h"
#include "server/optimizer/predict.h"

namespace elexirion::optimizer {

// One record of a predictor's reflective dataset.
struct ReflectionRecord {
  ojson inputs = ojson::object();
  // Output fields, or a text saying the output could not be produced.
  ojson outputs = ojson::object();
  std::string feedback;
};

std::string RenderReflectionPrompt(const std::string& current_instruction,
                                   const std::vector<ReflectionRecord>& records);

std::string ExtractInstruction(const std::string& answer);

// One reflection-LM call (journaled: a resumed run does not ask again). `rollout` names the
// sample (part of the LLM cache key).
absl::StatusOr<std::string> ProposeInstruction(OptimizerContext& ctx, const LmSettings& lm,
                                               const std::string& current_instruction,
                                               const std::vector<ReflectionRecord>& records,
                                               const std::string& rollout);

}  // namespace elexirion::optimizer
