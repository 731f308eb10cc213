#include "server/pipeline/file_ops.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "re2/re2.h"
#include "server/pipeline/elixir_format.h"
#include "server/pipeline/strings.h"
#include "server/pipeline/yaml_tree.h"

namespace elexirion::pipeline {
namespace {

using json = nlohmann::json;

std::string PathOf(const json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end() || !it->is_string()) return "";
  std::string path = it->get<std::string>();
  while (absl::StartsWith(path, "./")) path.erase(0, 2);
  return path.empty() ? "." : path;
}

absl::Status Need(const std::string& path, const char* key) {
  if (path.empty()) return absl::InvalidArgumentError(absl::StrCat("file_ops needs `", key, "`"));
  return absl::OkStatus();
}

absl::StatusOr<std::string> CsvToJson(const std::string& content) {
  std::vector<std::string> lines;
  for (absl::string_view line : absl::StrSplit(content, '\n', absl::SkipWhitespace())) {
    lines.emplace_back(absl::StripTrailingAsciiWhitespace(line));
  }
  if (lines.empty()) return std::string("[]");
  const std::vector<std::string> header = absl::StrSplit(lines[0], ',');
  json rows = json::array();
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::vector<std::string> cells = absl::StrSplit(lines[i], ',');
    json row = json::object();
    for (size_t c = 0; c < header.size(); ++c) {
      row[header[c]] = c < cells.size() ? cells[c] : "";
    }
    rows.push_back(std::move(row));
  }
  return JasonEncode(rows, /*pretty=*/false);
}

absl::StatusOr<std::string> JsonToCsv(const std::string& content) {
  const auto parsed = ParseJsonSafely(content);
  if (!parsed.has_value() || !parsed->is_array()) {
    return absl::InvalidArgumentError("json_to_csv needs a JSON list of objects");
  }
  if (parsed->empty()) return std::string();
  if (!(*parsed)[0].is_object()) {
    return absl::InvalidArgumentError("json_to_csv needs a JSON list of objects");
  }
  std::vector<std::string> header;
  for (auto it = (*parsed)[0].begin(); it != (*parsed)[0].end(); ++it) header.push_back(it.key());
  std::vector<std::string> lines = {absl::StrJoin(header, ",")};
  for (const json& row : *parsed) {
    std::vector<std::string> cells;
    for (const std::string& h : header) {
      const json v = row.is_object() && row.contains(h) ? row[h] : json();
      auto text =
          v.is_string() ? absl::StatusOr<std::string>(v.get<std::string>()) : ElixirToString(v);
      cells.push_back(text.ok() ? *text : JasonEncode(v, false));
    }
    lines.push_back(absl::StrJoin(cells, ","));
  }
  return absl::StrJoin(lines, "\n");
}

absl::StatusOr<std::string> YamlToJsonText(const std::string& content, size_t max_bytes) {
  YamlLimits limits;
  limits.max_bytes = max_bytes;
  auto root = ParseYaml(content, limits);
  if (!root.ok()) return root.status();
  return YamlToJson(**root).dump();
}

absl::StatusOr<std::string> Convert(const std::string& format, const std::string& content,
                                    size_t max_bytes) {
  if (format == "csv_to_json") return CsvToJson(content);
  if (format == "json_to_csv") return JsonToCsv(content);
  if (format == "yaml_to_json") return YamlToJsonText(content, max_bytes);
  return absl::InvalidArgumentError(absl::StrCat("unsupported format \"", format, "\""));
}

// One validate entry: "" when valid, else why not.
std::string Invalid(const ConfinedDirectory& dir, const std::string& path, const json& criteria) {
  auto info = dir.Stat(path);
  const bool must_exist = criteria.value("must_exist", true) != false;
  if (!info.ok()) {
    if (!absl::IsNotFound(info.status())) return std::string(info.status().message());
    return must_exist ? absl::StrCat("File does not exist: ", path) : "";
  }
  if (!must_exist) return absl::StrCat("File should not exist: ", path);
  if (criteria.value("must_be_file", false) == true && !info->is_file) {
    return absl::StrCat("Path is not a file: ", path);
  }
  if (criteria.value("must_be_dir", false) == true && !info->is_dir) {
    return absl::StrCat("Path is not a directory: ", path);
  }
  if (auto min = criteria.find("min_size"); min != criteria.end() && min->is_number() &&
                                            static_cast<double>(info->size) < min->get<double>()) {
    return absl::StrCat("File too small: ", info->size, " < ", min->dump(), " bytes");
  }
  if (auto max = criteria.find("max_size"); max != criteria.end() && max->is_number() &&
                                            static_cast<double>(info->size) > max->get<double>()) {
    return absl::StrCat("File too large: ", info->size, " > ", max->dump(), " bytes");
  }
  return "";
}

}  // namespace

absl::StatusOr<json> RunFileOps(const json& config, const ConfinedDirectory* dir,
                                size_t max_file_bytes) {
  if (dir == nullptr) {
    return absl::FailedPreconditionError(
        "file_ops needs the server's pipeline.output_dir (file operations are confined to it)");
  }
  const std::string op = config.value("operation", "");
  if (op == "copy" || op == "move" || op == "convert") {
    const std::string source = PathOf(config, "source");
    const std::string destination = PathOf(config, "destination");
    if (absl::Status s = Need(source, "source"); !s.ok()) return s;
    if (absl::Status s = Need(destination, "destination"); !s.ok()) return s;
    auto content = dir->Read(source, max_file_bytes);
    if (!content.ok()) return content.status();
    json result = {{"operation", op},
                   {"source", source},
                   {"destination", destination},
                   {"status", "completed"}};
    if (op == "convert") {
      const std::string format = config.value("format", "");
      auto converted = Convert(format, *content, max_file_bytes);
      if (!converted.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("convert ", format, ": ", converted.status().message()));
      }
      *content = std::move(*converted);
      result["format"] = format;
    }
    if (absl::Status s = dir->Write(destination, *content); !s.ok()) return s;
    if (op == "move") {
      if (absl::Status s = dir->Remove(source); !s.ok()) return s;
    }
    return result;
  }
  if (op == "delete") {
    const std::string path = PathOf(config, "path");
    if (absl::Status s = dir->Remove(path); !s.ok()) return s;
    return json{{"operation", "delete"}, {"path", path}, {"status", "completed"}};
  }
  if (op == "list") {
    const std::string path = PathOf(config, "path");
    auto names = dir->List(path);
    if (!names.ok()) return names.status();
    const json pattern = config.value("pattern", json());
    json files = json::array();
    if (pattern.is_string()) {
      RE2 re(pattern.get<std::string>(), RE2::Quiet);
      if (!re.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("pattern: invalid regex: ", re.error()));
      }
      for (const std::string& name : *names) {
        if (RE2::PartialMatch(name, re)) files.push_back(name);
      }
    } else {
      for (const std::string& name : *names) files.push_back(name);
    }
    const int64_t count = static_cast<int64_t>(files.size());
    return json{{"operation", "list"},
                {"path", path},
                {"pattern", pattern},
                {"files", std::move(files)},
                {"count", count}};
  }
  if (op == "validate") {
    const json files = config.value("files", json::array());
    json results = json::array();
    std::vector<std::string> failures;
    for (const json& spec : files) {
      if (!spec.is_object()) continue;
      const std::string path = PathOf(spec, "path");
      json criteria = spec;
      criteria.erase("path");
      const std::string why = Invalid(*dir, path, criteria);
      json entry = {
          {"path", path}, {"status", why.empty() ? "valid" : "invalid"}, {"criteria", criteria}};
      if (!why.empty()) {
        entry["error"] = why;
        failures.push_back(absl::StrCat(path, ": ", why));
      }
      results.push_back(std::move(entry));
    }
    if (!failures.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "Validation failed for ", failures.size(), " file(s): ", absl::StrJoin(failures, "; ")));
    }
    return json{{"operation", "validate"}, {"results", results}, {"status", "all_valid"}};
  }
  return absl::InvalidArgumentError(absl::StrCat("Unsupported operation: ", op));
}

}  // namespace elexirion::pipeline
