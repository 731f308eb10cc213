#include "server/optimizer/example.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "server/optimizer/hashing.h"

namespace elexirion::optimizer {

absl::StatusOr<Example> ExampleFromJson(const ojson& json, const std::string& where) {
  if (!json.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": an example must be a JSON object"));
  }
  Example ex;
  for (auto it = json.begin(); it != json.end(); ++it) {
    const std::string& key = it.key();
    if (key == "id") {
      if (!it->is_string()) {
        return absl::InvalidArgumentError(absl::StrCat(where, ".id: must be a string"));
      }
      ex.id = it->get<std::string>();
    } else if (key == "input") {
      if (!it->is_object()) {
        return absl::InvalidArgumentError(absl::StrCat(where, ".input: must be an object"));
      }
      ex.input = *it;
    } else if (key == "expected_output") {
      ex.expected_output = *it;
    } else if (key == "metadata") {
      if (!it->is_object() && !it->is_null()) {
        return absl::InvalidArgumentError(absl::StrCat(where, ".metadata: must be an object"));
      }
      if (it->is_object()) ex.metadata = *it;
    } else if (key == "created_at") {
      // Accepted and ignored (DatasetService output).
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": unknown key \"", key, "\" (expected input, expected_output, metadata, id)"));
    }
  }
  if (!json.contains("input")) {
    return absl::InvalidArgumentError(absl::StrCat(where, ".input: required"));
  }
  return ex;
}

ojson ExampleToJson(const Example& example) {
  ojson j = ojson::object();
  if (!example.id.empty()) j["id"] = example.id;
  j["input"] = example.input;
  if (!example.expected_output.is_null()) j["expected_output"] = example.expected_output;
  if (!example.metadata.empty()) j["metadata"] = example.metadata;
  return j;
}

absl::StatusOr<std::vector<Example>> ExamplesFromJsonl(std::string_view text,
                                                       const std::string& what) {
  std::vector<Example> out;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(absl::string_view(text.data(), text.size()), '\n')) {
    ++line_no;
    absl::string_view t = absl::StripAsciiWhitespace(line);
    if (t.empty()) continue;
    ojson j = ojson::parse(t.begin(), t.end(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      return absl::InvalidArgumentError(absl::StrCat(what, " line ", line_no, ": not valid JSON"));
    }
    auto ex = ExampleFromJson(j, absl::StrCat(what, " line ", line_no));
    if (!ex.ok()) return ex.status();
    out.push_back(std::move(*ex));
  }
  return out;
}

ojson Labels(const Example& example, const std::string& primary_output) {
  if (example.expected_output.is_object()) return example.expected_output;
  ojson labels = ojson::object();
  if (!example.expected_output.is_null() && !primary_output.empty()) {
    labels[primary_output] = example.expected_output;
  }
  return labels;
}

ojson FlatRecord(const Example& example, const std::string& primary_output) {
  ojson flat = example.input;
  const ojson labels = Labels(example, primary_output);
  for (auto it = labels.begin(); it != labels.end(); ++it) flat[it.key()] = it.value();
  return flat;
}

std::string ExampleFingerprint(const Example& example) {
  return HashHex(absl::StrCat(example.input.dump(), "\x1f", example.expected_output.dump()));
}

}  // namespace elexirion::optimizer
