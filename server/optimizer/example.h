// Training and validation examples in the design document's layout:
//   {"id": "ab12cd34", "input": {...}, "expected_output": {...} | "text" | 42, "metadata": {...}}
// `input` feeds the pipeline's `inputs` ({{inputs.x}}) and signature input fields of the same
// name; `expected_output` holds the labels the metric compares against.
//
// DSPy view (for demos and the dataset summary): the flat record {**input, **labels}, where
// labels are expected_output's fields, or {<primary output field>: expected_output} when
// expected_output is not an object.
//
// Thread safety: plain values.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace elexirion::optimizer {

using ojson = nlohmann::ordered_json;

struct Example {
  std::string id;
  ojson input = ojson::object();
  ojson expected_output;  // null when absent
  ojson metadata = ojson::object();
};

// One example from its JSON object; INVALID_ARGUMENT naming `where` ("trainset[3]") when it is
// not an object, has no object `input`, or has unknown keys.
absl::StatusOr<Example> ExampleFromJson(const ojson& json, const std::string& where);
ojson ExampleToJson(const Example& example);

// JSON Lines, one example per non-blank line; errors name the line.
absl::StatusOr<std::vector<Example>> ExamplesFromJsonl(std::string_view text,
                                                       const std::string& what = "examples");

// The labels as fields (see above).
ojson Labels(const Example& example, const std::string& primary_output);
// {**input, **labels}.
ojson FlatRecord(const Example& example, const std::string& primary_output);

// A stable identity of an example's content (used for checkpoint keys and for "this example
// is the demo" checks).
std::string ExampleFingerprint(const Example& example);

}  // namespace elexirion::optimizer
