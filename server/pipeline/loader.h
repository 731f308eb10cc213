// LoadPipeline: pipeline_ex workflow YAML -> Pipeline, refusing hostile or invalid input.
//
// Accepted format (pipeline_ex's, see docs/reference pipeline_ex.md §1):
//   workflow:
//     name: <string>                 required
//     defaults: {claude_preset, output_dir, ...}   other defaults are inert, as in pipeline_ex
//     global_vars: {k: v}            {{global_vars.k}}
//     gemini_functions: {...}        validated; function calling itself is not performed
//     steps: [ ... ]                 required, non-empty, unique names
//     <anything else>                ignored
// Step types: claude, gemini, claude_smart, claude_extract, claude_robust, claude_session
// (optional `conversation:` turns), claude_batch, parallel_claude, set_variable (`variables:`
// or `variable:`/`value:`), gemini_instructor, for_loop / while_loop (sub-`steps`), pipeline
// (`pipeline_file` read from prompts_dir, or an inline `pipeline:`), data_transform, file_ops.
// test_echo (pipeline_ex's test environment only) is refused by name; any other type is
// unknown. Nested steps get the qualified path "<parent>/<name>" (Step::path).
// Limits: max_steps counts every step, nested ones included; loops and nested pipelines nest
// at most max_nesting_depth deep; a while_loop's max_iterations is at most
// max_loop_iterations; a pipeline_file that (indirectly) includes itself is refused.
// Our extension: `signature: "a, b -> c"` on a step (pipeline_ex ignores unknown keys).
//
// Every error is INVALID_ARGUMENT and names the place: "line L, column C: ..." and, inside a
// step, `step "analyze": ...`.
//
// Thread safety: reentrant.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "server/pipeline/pipeline.h"
#include "server/pipeline/yaml_tree.h"

namespace elexirion::pipeline {

struct LoadOptions {
  // Bytes (1 MiB), nodes (100k, counting alias expansions), depth (64).
  YamlLimits yaml;
  // Steps in the document and its pipeline files, nested ones included.
  size_t max_steps = 500;
  // Loops and nested pipelines inside one another (pipeline_ex's max_depth default).
  int max_nesting_depth = 10;
  // Largest while_loop max_iterations accepted (pipeline_ex caps at 1000).
  size_t max_loop_iterations = 1000;
  // When set, file prompt parts whose path holds no {{template}} are checked now: the file must
  // be a regular file under this directory, no larger than max_prompt_file_bytes. (The
  // executor checks again when it reads them.) Path syntax is always checked.
  std::string prompts_dir;
  size_t max_prompt_file_bytes = 1 << 20;
};

absl::StatusOr<Pipeline> LoadPipeline(std::string_view yaml, const LoadOptions& options = {});

}  // namespace elexirion::pipeline
