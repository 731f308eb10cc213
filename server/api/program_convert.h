// Optimized programs as the pipeline engine applies them.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "server/pipeline/program.h"

namespace elexirion::api {

// Reads a program in DSPy's save format: every top-level key but "metadata" is a predictor
// named after its pipeline step (a DSPy ChainOfThought's "<step>.predict" also maps to
// <step>); its signature.instructions becomes the step's instruction (when not empty) and its
// demos the step's demos (without DSPy's bookkeeping key "augmented").
absl::StatusOr<pipeline::ProgramState> ProgramStateFromDspyJson(const std::string& dspy_json);

}  // namespace elexirion::api
