// The optimizer's program model: a pipeline plus one predictor per optimizable step.
//
// A predictor is DSPy's Predict or ChainOfThought over the step's signature (pipeline
// `signature:` key, default "input_data -> pipeline_output"):
//  - instructions: the step's static prompt text (its static parts joined with "\n", as the
//    pipeline engine defines the instruction), or DSPy's default sentence when the step has no
//    static part;
//  - demos: JSON objects keyed by signature field names; bootstrapped demos carry
//    "augmented": true;
//  - ChainOfThought prepends an output field `reasoning` (no description, prefix "Reasoning:").
// The kind comes from ProgramOptions, else the step's `predictor:` key (predict |
// chain_of_thought; pipeline_ex ignores unknown keys), else Predict. Field descriptions may be
// given per step with `signature_descriptions: {field: text}` or ProgramOptions.
//
// Program values are cheap to copy and compare; optimizers work on copies.
// Thread safety: plain values.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "server/optimizer/adapter.h"
#include "server/pipeline/pipeline.h"
#include "server/pipeline/program.h"
#include "server/pipeline/signature.h"

namespace elexirion::optimizer {

using ojson = nlohmann::ordered_json;

enum class PredictorKind { kPredict, kChainOfThought };
const char* PredictorKindName(PredictorKind kind);
absl::StatusOr<PredictorKind> ParsePredictorKind(const std::string& text);

struct Predictor {
  std::string name;       // the pipeline step's name
  std::string step_type;  // "claude", "gemini", ...
  PredictorKind kind = PredictorKind::kPredict;
  // The user signature (without `reasoning`); `signature.instructions` is the current
  // instruction.
  pipeline::Signature signature;
  // The instruction the step had before optimization.
  std::string base_instruction;
  // Field prefixes changed by an optimizer (COPRO's last-field prefix); others are inferred.
  std::map<std::string, std::string> prefix_overrides;
  std::vector<ojson> demos;

  // DSPy's predictor path in the saved state: "<name>" (Predict) or "<name>.predict"
  // (ChainOfThought); names that are not Python identifiers are sanitized.
  std::string SaveKey() const;
  // The signature the adapters see (reasoning prepended for ChainOfThought).
  absl::StatusOr<AdapterSignature> ToAdapterSignature() const;
  // Field names in DSPy's `fields` order: inputs, (reasoning,) outputs.
  std::vector<std::string> FieldNames() const;
  std::vector<std::string> OutputNames() const;  // with reasoning for ChainOfThought
  std::string Prefix(const std::string& field) const;
};

struct Program {
  std::vector<Predictor> predictors;  // in pipeline step order

  const Predictor* Find(const std::string& name) const;
  Predictor* Find(const std::string& name);
  // The last predictor's last output field: where a non-object expected_output belongs.
  std::string PrimaryOutputField() const;
  // Canonical JSON of the learned state (instructions, prefixes, demos) for hashing and
  // equality: {"<step>": {"kind", "instructions", "prefixes", "demos"}}.
  ojson StateJson() const;
  // DSPy's reset_copy(): a copy without demos (instructions and prefixes kept).
  Program ResetCopy() const;
};

struct ProgramOptions {
  // Steps to optimize; empty: every optimizable step. Unknown or non-optimizable names are
  // INVALID_ARGUMENT.
  std::vector<std::string> steps;
  // Predictor kind per step (overrides the step's `predictor:` key).
  std::map<std::string, PredictorKind> kinds;
  // Field descriptions per step: step -> field -> description.
  std::map<std::string, std::map<std::string, std::string>> descriptions;
};

// The optimizable step a DSPy save key (without ".predict") names: the key itself when it is
// a step, else the step whose path sanitizes to it ("each_file_summarize" ->
// "each_file/summarize", for steps inside loops and nested pipelines); the key when none does.
std::string StepForSaveKey(const pipeline::Pipeline& pipeline, const std::string& key);

absl::StatusOr<Program> BuildProgram(const pipeline::Pipeline& pipeline,
                                     const ProgramOptions& options = {});

// The pipeline engine's ProgramState for export (RenderOptimizedYaml): the instruction when
// it differs from the step's static text, and the demos restricted by the engine to signature
// fields.
pipeline::ProgramState ToProgramState(const Program& program);

}  // namespace elexirion::optimizer
