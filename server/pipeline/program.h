// Optimizable parameters of a pipeline and how a learned program is rendered into prompts.
//
// Each optimizable step (claude, gemini, claude_smart, claude_extract, claude_robust,
// claude_session, gemini_instructor: one model call built from prompt parts), at any depth
// (inside for_loop / while_loop and nested pipelines too, named by its qualified path such
// as "each_file/summarize"), exposes:
//  - its signature (declared `signature:` or "input_data -> pipeline_output");
//  - its instruction: the contents of its `static` prompt parts joined with "\n", exactly as
//    written ({{templates}} unexpanded). A static part holding only templates (an input slot
//    like "{{inputs.code}}") is not instruction text: it is left in place, never replaced.
// A ProgramState gives, per step, an instruction and/or demos (JSON objects field -> value).
//
// Prompt format with a program (step S with instruction I and demos D1..Dn):
//   The instruction (static) parts of S are replaced by ONE static part, placed where the first
//   of them was (at the front when S has none); the other parts (input slots, file,
//   previous_response, ...) keep their order. Its content is
//
//     <I>                              (I unset: the original static parts joined with "\n")
//     <blank line>                     (only when I is non-empty and there are demos)
//     Example 1:
//     [[ ## <field> ## ]]
//     <value>
//     <blank line>
//     [[ ## <field> ## ]]
//     <value>
//     <blank line>
//     Example 2:
//     ...
//     <value>
//     <empty line>                     (content ends with "\n" when there are demos)
//
//   Fields follow the signature order (inputs, then outputs); a field absent or null in a demo
//   is skipped; keys outside the signature are ignored; a demo with no signature field is an
//   error. String values are inserted raw, other JSON as Jason-pretty JSON (as
//   previous_response does). Parts are then joined with "\n" as usual, so the examples end in
//   a blank line before the rest of the prompt.
//   The content then goes through {{template}} interpolation like any static part, so an
//   instruction may keep templates such as {{inputs.code}}.
// A step absent from the program, or present with neither instruction nor demos, renders
// exactly as pipeline_ex would.
// RenderOptimizedYaml (optimized_yaml.h) writes the same part into plain YAML, so the exported
// pipeline renders, without a program, the prompt this format gives with one.
//
// Thread safety: plain values and pure functions.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "server/pipeline/pipeline.h"
#include "server/pipeline/signature.h"

namespace elexirion::pipeline {

struct StepProgram {
  // Replaces the step's static prompt parts; unset keeps them (as the instruction).
  std::optional<std::string> instruction;
  // Few-shot examples: JSON objects mapping signature field names to values.
  std::vector<nlohmann::json> demos;

  bool empty() const { return !instruction.has_value() && demos.empty(); }
};

struct ProgramState {
  std::map<std::string, StepProgram> steps;  // step name -> program
};

struct OptimizableStep {
  std::string name;
  std::string type;
  std::string signature_text;
  Signature signature;
  // The instruction parts joined with "\n", templates unexpanded.
  std::string instruction;
  // Static parts holding instruction text (input-slot parts excluded).
  size_t static_part_count = 0;
};

std::vector<OptimizableStep> ListOptimizableSteps(const Pipeline& pipeline);

// The instruction (static, not template-only) parts of `step` joined with "\n".
std::string StaticInstruction(const Step& step);

// INVALID_ARGUMENT when the program names an unknown or non-optimizable step, or holds a demo
// that is not an object or has none of the step's signature fields.
absl::Status ValidateProgram(const Pipeline& pipeline, const ProgramState& program);

// The content of the single static part that replaces the step's static parts.
absl::StatusOr<std::string> RenderProgramContent(const Step& step, const StepProgram& program);

// The step's prompt parts with the program applied (unchanged when the program is empty).
absl::StatusOr<std::vector<PromptPart>> ApplyProgram(const Step& step, const StepProgram& program);

// {"steps": {"<name>": {"instruction": "...", "demos": [{...}]}}}; "instruction" is omitted
// when unset.
nlohmann::json ProgramStateToJson(const ProgramState& program);
absl::StatusOr<ProgramState> ProgramStateFromJson(const nlohmann::json& json);

}  // namespace elexirion::pipeline
