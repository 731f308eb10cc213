// claude_extract's content processing (lib/pipeline/step/claude_extract.ex), live-mode
// behaviour: use_content_extractor leaves the text unchanged (pipeline_ex's live extractor is
// not implemented), then `format` (text, json, structured, summary, markdown) and the
// `post_processing` operations (extract_code_blocks, extract_recommendations, extract_links,
// extract_key_points, format_markdown, generate_summary) apply in order. String lengths and
// slices count code points (Elixir counts graphemes; equal for most text).
//
// Thread safety: pure functions.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace elexirion::pipeline {

absl::StatusOr<std::string> ApplyExtraction(const std::string& content,
                                            const nlohmann::json& extraction_config);

// extraction_metadata without pipeline_ex's timestamp.
nlohmann::json ExtractionMetadata(const std::string& original, const std::string& processed,
                                  const nlohmann::json& extraction_config,
                                  const std::string& step_name);

}  // namespace elexirion::pipeline
