// Renders prompt parts the way pipeline_ex's Pipeline.PromptBuilder does
// (lib/pipeline/prompt_builder.ex), after the executor's {{template}} interpolation:
//  - static: the interpolated content; nil/false -> "", numbers/bools via to_string;
//  - file: the whole file, read from the confined prompts directory (the path may hold
//    templates; the content is inserted verbatim, not interpolated);
//  - previous_response without extract: a text result as is, a map result as Jason-pretty
//    JSON of the whole result map;
//  - previous_response with extract "a.b": the value at that path (string keys); strings raw,
//    maps and lists as pretty JSON, null as "nil", numbers/bools via to_string; a missing path
//    fails the step when strict (the default) and inserts "nil" otherwise;
//  - session_context, claude_continue: "".
// Parts are joined with "\n".
//
// Thread safety: pure function over caller-owned data.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "server/pipeline/confined_dir.h"
#include "server/pipeline/pipeline.h"
#include "server/pipeline/templates.h"

namespace elexirion::pipeline {

struct PromptBuildContext {
  const TemplateContext* templates = nullptr;
  // Results visible to previous_response (claude_batch tasks see an empty map).
  const nlohmann::json* results = nullptr;
  const ConfinedDirectory* prompts = nullptr;  // nullptr: file parts fail
  size_t max_file_bytes = 1 << 20;
};

absl::StatusOr<std::string> BuildPrompt(const std::vector<PromptPart>& parts,
                                        const PromptBuildContext& context);

// previous_response rendering of one result (exposed for tests).
absl::StatusOr<std::string> RenderPreviousResponse(const nlohmann::json& result,
                                                   const std::optional<std::string>& extract,
                                                   bool strict);

}  // namespace elexirion::pipeline
