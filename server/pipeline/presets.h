// claude_smart presets, as pipeline_ex's Pipeline.OptionBuilder defines them
// (lib/pipeline/option_builder.ex): development, production, analysis, chat, test.
//
// MergePreset() deep-merges a step's claude_options over the preset (step values win, maps
// merge recursively). ApplyPresetOptimizations() adds what claude_smart (only) applies after
// the merge: an append_system_prompt when none is set, and the preset's tool list.
//
// Thread safety: pure functions.
#pragma once

#include <string_view>

#include "nlohmann/json.hpp"

namespace elexirion::pipeline {

bool IsKnownPreset(std::string_view preset);
// The preset's options; unknown names give development's (as pipeline_ex does).
nlohmann::json PresetOptions(std::string_view preset);
nlohmann::json DeepMerge(const nlohmann::json& base, const nlohmann::json& overrides);
nlohmann::json MergePreset(std::string_view preset, const nlohmann::json& claude_options);
nlohmann::json ApplyPresetOptimizations(std::string_view preset, nlohmann::json options);

}  // namespace elexirion::pipeline
