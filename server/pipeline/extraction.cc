#include "server/pipeline/extraction.h"

#include <cctype>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "server/pipeline/elixir_format.h"
#include "server/pipeline/strings.h"

namespace elexirion::pipeline {
namespace {

using json = nlohmann::json;

size_t CodePoints(absl::string_view s) {
  size_t n = 0;
  for (char c : s) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}

// The first `count` code points of `s`.
std::string SliceCodePoints(absl::string_view s, size_t count) {
  size_t seen = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (seen == count) return std::string(s.substr(0, i));
      ++seen;
    }
  }
  return std::string(s);
}

bool IsPcreSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

std::string Section(const std::string& content, absl::string_view title,
                    const std::vector<std::string>& items, absl::string_view separator) {
  if (items.empty()) return content;
  return absl::StrCat(content, "\n## ", title, "\n", absl::StrJoin(items, separator), "\n");
}

std::string PostProcess(const std::string& content, const std::string& op) {
  if (op == "extract_code_blocks") {
    std::vector<std::string> blocks;
    size_t pos = 0;
    while (true) {
      const size_t open = content.find("```", pos);
      if (open == std::string::npos) break;
      const size_t close = content.find("```", open + 3);
      if (close == std::string::npos) break;
      blocks.push_back(content.substr(open, close + 3 - open));
      pos = close + 3;
    }
    return Section(content, "Code Blocks Extracted", blocks, "\n\n");
  }
  if (op == "extract_recommendations" || op == "extract_key_points") {
    std::vector<std::string> lines;
    for (absl::string_view line : absl::StrSplit(content, '\n')) {
      bool keep = false;
      if (op == "extract_recommendations") {
        keep = absl::StrContains(line, "recommend") || absl::StrContains(line, "suggest");
      } else {
        size_t digits = 0;
        while (digits < line.size() && std::isdigit(static_cast<unsigned char>(line[digits]))) {
          ++digits;
        }
        keep = absl::StartsWith(line, "- ") || absl::StartsWith(line, "* ") ||
               (digits > 0 && digits < line.size() && line[digits] == '.');
      }
      if (keep) lines.emplace_back(line);
    }
    return Section(
        content,
        op == "extract_recommendations" ? "Recommendations Extracted" : "Key Points Extracted",
        lines, "\n");
  }
  if (op == "extract_links") {
    std::vector<std::string> links;
    size_t pos = 0;
    while (pos < content.size()) {
      size_t start = content.find("http", pos);
      if (start == std::string::npos) break;
      size_t after = start + 4;
      if (after < content.size() && content[after] == 's') ++after;
      if (content.compare(after, 3, "://") != 0) {
        pos = start + 1;
        continue;
      }
      size_t end = after + 3;
      while (end < content.size() && !IsPcreSpace(content[end])) ++end;
      if (end == after + 3) {
        pos = start + 1;
        continue;
      }
      links.push_back(absl::StrCat("- ", content.substr(start, end - start)));
      pos = end;
    }
    return Section(content, "Links Extracted", links, "\n");
  }
  if (op == "format_markdown") {
    if (absl::StrContains(content, "#")) return content;
    return absl::StrCat("# Content\n\n", content, "\n");
  }
  if (op == "generate_summary") {
    std::vector<absl::string_view> sentences = absl::StrSplit(content, ". ");
    if (sentences.size() > 3) sentences.resize(3);
    const std::string summary = SliceCodePoints(absl::StrJoin(sentences, ". "), 200);
    return absl::StrCat(content, "\n## Generated Summary\n", summary, "...\n");
  }
  return content;
}

}  // namespace

absl::StatusOr<std::string> ApplyExtraction(const std::string& content, const json& config) {
  std::string out = content;
  const json format_value = config.value("format", json("text"));
  const std::string format = format_value.is_string() ? format_value.get<std::string>() : "text";
  if (format == "json") {
    if (!ParseJsonSafely(out).has_value()) {
      out = JasonEncode(json{{"content", out}, {"format", "json"}}, /*pretty=*/false);
    }
  } else if (format == "structured") {
    if (!absl::StrContains(out, "##")) out = absl::StrCat("## Extracted Content\n\n", out, "\n");
  } else if (format == "summary") {
    const json max = config.value("max_summary_length", json(500));
    const int64_t max_length = max.is_number_integer() ? max.get<int64_t>() : 500;
    if (static_cast<int64_t>(CodePoints(out)) > max_length) {
      out = SliceCodePoints(out, static_cast<size_t>(std::max<int64_t>(0, max_length - 3))) + "...";
    }
  } else if (format == "markdown") {
    if (!absl::StrContains(out, "#")) out = absl::StrCat("# Extracted Content\n\n", out, "\n");
  }
  const json ops = config.value("post_processing", json::array());
  if (ops.is_array()) {
    for (const json& op : ops) {
      if (op.is_string()) out = PostProcess(out, op.get<std::string>());
    }
  }
  return out;
}

json ExtractionMetadata(const std::string& original, const std::string& processed,
                        const json& config, const std::string& step_name) {
  auto or_default = [&](const char* key, json fallback) {
    auto it = config.find(key);
    return (it == config.end() || it->is_null() || *it == false) ? fallback : *it;
  };
  return json{{"format", or_default("format", "text")},
              {"use_content_extractor", or_default("use_content_extractor", false)},
              {"post_processing_applied", or_default("post_processing", json::array())},
              {"original_length", static_cast<int64_t>(CodePoints(original))},
              {"processed_length", static_cast<int64_t>(CodePoints(processed))},
              {"step_name", step_name}};
}

}  // namespace elexirion::pipeline
