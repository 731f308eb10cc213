#include "client/cli/example_files.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "client/cli/command.h"
#include "client/cli/text_file.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"

namespace elexirion::cli {
namespace {

namespace fs = std::filesystem;

// Ids become file names on export, so they are checked here as the server checks them.
bool IsValidId(const std::string& id) {
  static const std::regex kId("[A-Za-z0-9_-]{1,64}");
  return std::regex_match(id, kId);
}

// One example in the design layout (or a JSONL line, the same object). Checked field by field
// here so that the user learns which file is wrong before anything is sent.
absl::StatusOr<v1::Example> ParseExample(const std::string& flag, const std::string& source,
                                         const std::string& text) {
  auto bad = [&](absl::string_view why) {
    return UsageError(absl::StrCat(flag, ": ", source, ": ", why));
  };
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return bad(absl::StrCat("not valid JSON (", e.what(), ")"));
  }
  if (!json.is_object()) return bad("must be a JSON object");
  auto input = json.find("input");
  if (input == json.end() || !input->is_object() || input->empty()) {
    return bad("input: required (a non-empty JSON object)");
  }
  for (const char* field : {"expected_output", "metadata"}) {
    auto it = json.find(field);
    if (it == json.end()) continue;
    if (it->is_null()) {
      json.erase(it);  // Python's None: the same as absent
    } else if (!it->is_object()) {
      return bad(absl::StrCat(field, ": must be a JSON object"));
    }
  }
  if (auto id = json.find("id"); id != json.end()) {
    if (!id->is_string() || !IsValidId(id->get<std::string>())) {
      return bad("id: must be a string matching [A-Za-z0-9_-]{1,64}");
    }
  }
  v1::Example example;
  auto parsed = google::protobuf::util::JsonStringToMessage(json.dump(), &example);
  if (!parsed.ok()) return bad(parsed.message().ToString());
  return example;
}

nlohmann::ordered_json StructJson(const google::protobuf::Struct& value) {
  std::string text;
  if (!google::protobuf::util::MessageToJsonString(value, &text).ok()) {
    return nlohmann::ordered_json::object();
  }
  auto json = nlohmann::ordered_json::parse(text, nullptr, false);
  return json.is_object() ? json : nlohmann::ordered_json::object();
}

// True when two design-layout files hold the same example. created_at is left out: the
// server stamps an imported example with the time of the import, so a file exported earlier
// (or written by the Python tool) differs there only.
bool SameExample(nlohmann::json a, nlohmann::json b) {
  if (!a.is_object() || !b.is_object()) return false;
  for (nlohmann::json* json : {&a, &b}) {
    json->erase("created_at");
    for (const char* field : {"expected_output", "metadata"}) {
      if (!json->contains(field) || (*json)[field].is_null()) {
        (*json)[field] = nlohmann::json::object();
      }
    }
  }
  return a == b;
}

}  // namespace

absl::StatusOr<std::vector<SourcedExample>> ReadExampleDir(const std::string& flag,
                                                           const std::string& dir) {
  std::error_code error;
  if (!fs::is_directory(dir, error)) {
    return UsageError(absl::StrCat(flag, ": \"", dir, "\" is not a directory"));
  }
  std::vector<fs::path> files;
  for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error)) {
    std::error_code type_error;
    if (it->path().extension() == ".json" && it->is_regular_file(type_error)) {
      files.push_back(it->path());
    }
  }
  if (error) {
    return UsageError(absl::StrCat(flag, ": cannot list \"", dir, "\": ", error.message()));
  }
  if (files.empty()) return UsageError(absl::StrCat(flag, ": no *.json files in \"", dir, "\""));
  // Sorted so that an import is reproducible (the design's ids are random, not ordered).
  std::sort(files.begin(), files.end());
  std::vector<SourcedExample> out;
  out.reserve(files.size());
  for (const auto& file : files) {
    const std::string source = file.string();
    auto text = ReadTextFile(flag, source);
    if (!text.ok()) return text.status();
    auto example = ParseExample(flag, source, *text);
    if (!example.ok()) return example.status();
    out.push_back({source, *std::move(example)});
  }
  return out;
}

absl::StatusOr<std::vector<SourcedExample>> ReadExampleJsonl(const std::string& flag,
                                                             const std::string& path) {
  auto text = ReadTextFile(flag, path);
  if (!text.ok()) return text.status();
  std::vector<SourcedExample> out;
  std::istringstream lines(*text);
  int number = 0;
  for (std::string line; std::getline(lines, line);) {
    ++number;
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    const std::string source = absl::StrCat(path, ":", number);
    auto example = ParseExample(flag, source, line);
    if (!example.ok()) return example.status();
    out.push_back({source, *std::move(example)});
  }
  if (out.empty()) return UsageError(absl::StrCat(flag, ": no examples in \"", path, "\""));
  return out;
}

absl::StatusOr<std::vector<ImportChunk>> ChunkForImport(const std::vector<SourcedExample>& examples,
                                                        size_t max_bytes, size_t max_examples) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::vector<ImportChunk> chunks;
  for (const auto& e : examples) {
    std::string line;
    if (auto s = google::protobuf::util::MessageToJsonString(e.example, &line, options); !s.ok()) {
      return UsageError(absl::StrCat(e.source, ": ", s.message().ToString()));
    }
    line.push_back('\n');
    if (line.size() > max_bytes) {
      return UsageError(absl::StrCat(e.source, ": example of ", line.size(),
                                     " bytes exceeds the import limit of ", max_bytes));
    }
    if (chunks.empty() || chunks.back().sources.size() >= max_examples ||
        chunks.back().jsonl.size() + line.size() > max_bytes) {
      chunks.emplace_back();
    }
    chunks.back().jsonl += line;
    chunks.back().sources.push_back(e.source);
  }
  return chunks;
}

std::string NameSourceInError(const ImportChunk& chunk, const std::string& error) {
  absl::string_view rest(error);
  if (!absl::ConsumePrefix(&rest, "line ")) return error;
  size_t digits = 0;
  while (digits < rest.size() && absl::ascii_isdigit(static_cast<unsigned char>(rest[digits]))) {
    ++digits;
  }
  size_t line = 0;
  if (digits == 0 || !absl::SimpleAtoi(rest.substr(0, digits), &line) || line == 0 ||
      line > chunk.sources.size()) {
    return error;
  }
  rest.remove_prefix(digits);
  // "line 3: reason" and "line 3.input: reason" both become "SOURCE: [input: ]reason".
  absl::ConsumePrefix(&rest, ":");
  absl::ConsumePrefix(&rest, ".");
  return absl::StrCat(chunk.sources[line - 1], ": ", absl::StripLeadingAsciiWhitespace(rest));
}

std::string DesignLayoutJson(const v1::Example& example) {
  // ordered_json keeps the design's field order (Python's json.dump keeps insertion order).
  nlohmann::ordered_json json = nlohmann::ordered_json::object();
  json["id"] = example.id();
  json["input"] = StructJson(example.input());
  json["expected_output"] = StructJson(example.expected_output());
  json["metadata"] = StructJson(example.metadata());
  json["created_at"] = example.created_at();
  return json.dump(2) + "\n";
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& content) {
  const std::string temp = absl::StrCat(path, ".tmp.", ::getpid());
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << content;
    out.close();
    if (!out) {
      std::error_code ignored;
      fs::remove(temp, ignored);
      return absl::UnavailableError(absl::StrCat("cannot write \"", path, "\""));
    }
  }
  std::error_code error;
  fs::rename(temp, path, error);
  if (error) {
    fs::remove(temp, error);
    return absl::UnavailableError(absl::StrCat("cannot write \"", path, "\""));
  }
  return absl::OkStatus();
}

absl::StatusOr<WriteOutcome> WriteExampleFile(const std::string& dir, const v1::Example& example,
                                              bool force) {
  if (!IsValidId(example.id())) {
    return absl::DataLossError(absl::StrCat(
        "the server sent an example id unfit for a file name: \"", example.id(), "\""));
  }
  const std::string path = (fs::path(dir) / (example.id() + ".json")).string();
  const std::string content = DesignLayoutJson(example);
  std::error_code error;
  if (fs::exists(path, error)) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream existing;
    existing << in.rdbuf();
    auto old_json = nlohmann::json::parse(existing.str(), nullptr, false);
    if (SameExample(old_json, nlohmann::json::parse(content))) {
      return WriteOutcome::kUnchanged;
    }
    if (!force) {
      return UsageError(absl::StrCat("--dir: \"", path,
                                     "\" exists with different content; --force overwrites it"));
    }
  }
  if (auto s = WriteFileAtomically(path, content); !s.ok()) return s;
  return WriteOutcome::kWritten;
}

}  // namespace elexirion::cli
