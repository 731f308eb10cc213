// The program in DSPy's save format (Module.save("x.json"), DSPy 3.3.1): one key per named
// predictor ("<step>" for Predict, "<step>.predict" for ChainOfThought, in pipeline order),
// each {"traces": [], "train": [], "demos": [...], "signature": {"instructions": ...,
// "fields": [{"prefix": "Question:", "description": "${question}"}, ...]}, "lm": null}, then
// "metadata": {"dependency_versions": {"python", "dspy", "cloudpickle"}, "elexirion": {...}}.
// Written like orjson with OPT_INDENT_2 | OPT_APPEND_NEWLINE (2-space indent, trailing
// newline). Bootstrapped demos carry "augmented": true; labeled demos are the flat example
// records. Fields are in DSPy's `fields` order (inputs, reasoning, outputs).
//
// Python DSPy loads it with `module.load(path)` into a module with the same predictor names
// and signatures; DspyModuleSource() writes such a module. Only "dependency_versions" is read
// by DSPy's loader (mismatches only warn); "elexirion" carries the step mapping.
//
// Thread safety: pure functions.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "server/optimizer/program.h"
#include "server/pipeline/pipeline.h"

namespace elexirion::optimizer {

// The DSPy release whose format is written.
inline constexpr char kDspyVersion[] = "3.3.1";

nlohmann::ordered_json ToDspyState(
    const Program& program, const std::string& pipeline_name,
    const nlohmann::ordered_json& extra_metadata = nlohmann::ordered_json::object());
std::string ToDspyJson(
    const Program& program, const std::string& pipeline_name,
    const nlohmann::ordered_json& extra_metadata = nlohmann::ordered_json::object());

// Applies a saved state to `base` (the program built from the same pipeline): instructions,
// field prefixes and demos per predictor, fields matched by position as DSPy does.
// INVALID_ARGUMENT naming the predictor key when the structure does not fit.
absl::StatusOr<Program> ApplyDspyJson(const Program& base, const std::string& json);

// Python source of a dspy.Module whose named predictors match the program, so that
// `Program().load("program.json")` works in Python DSPy.
std::string DspyModuleSource(const Program& program, const std::string& class_name = "Program");

}  // namespace elexirion::optimizer
