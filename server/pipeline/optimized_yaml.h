// Export of a learned program as plain pipeline_ex YAML.
//
// RenderOptimizedYaml() writes the pipeline's document (every key kept, in order) with each
// programmed step's prompt rewritten as ApplyProgram() describes (program.h): its static parts
// become one static part holding the instruction and the demos, in the first static part's
// place. previous_response parts written with the design document's `name:` are written with
// `step:`, which pipeline_ex requires. The result runs in pipeline_ex without this service, and
// loading it back here and executing without a program renders the same prompts as executing
// the original with the program.
//
// EmitYaml() is the block-style writer used for that: strings stay plain when that is
// unambiguous, multi-line text uses literal blocks (|, |-, |+ with an indentation indicator
// when needed), everything else is double-quoted with escapes; floats always carry a '.' or an
// exponent so they reload as floats.
//
// Thread safety: pure functions.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "server/pipeline/pipeline.h"
#include "server/pipeline/program.h"

namespace elexirion::pipeline {

absl::StatusOr<std::string> RenderOptimizedYaml(const Pipeline& pipeline,
                                                const ProgramState& program);

std::string EmitYaml(const nlohmann::ordered_json& document);

}  // namespace elexirion::pipeline
