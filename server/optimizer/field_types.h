// Field types of DSPy string signatures ("int", "list[str]", "dict[str, int]",
// "Literal['a', 'b']", "Optional[float]", "str | None", ...) and what DSPy's adapters do with
// them: the annotation name shown in prompts, the output-type note and reminder, the pydantic
// JSON schema (with "type" moved first), and parse_value's conversion of model text into a
// typed JSON value (pydantic lax-mode rules for the common types).
//
// Unknown type names (custom classes) are kept by name and accept any JSON value.
//
// Thread safety: plain values and pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace elexirion::optimizer {

struct FieldType {
  enum class Kind {
    kStr,
    kInt,
    kFloat,
    kBool,
    kList,
    kDict,
    kTuple,
    kLiteral,
    kUnion,
    kNone,
    kAny,
    kOther
  };
  Kind kind = Kind::kStr;
  // Name as DSPy's get_annotation_name renders it ("str", "list[str]", "Literal['a', 'b']",
  // "Union[str, NoneType]").
  std::string name = "str";
  std::vector<FieldType> args;  // list/dict/tuple/union members
  nlohmann::ordered_json literal_values = nlohmann::ordered_json::array();

  bool IsStr() const { return kind == Kind::kStr; }
};

// Parses a type expression; unknown names become kOther. INVALID_ARGUMENT for unbalanced
// brackets.
absl::StatusOr<FieldType> ParseFieldType(std::string_view text);

// pydantic's JSON schema of the type, keys ordered with "type" first, then alphabetically.
nlohmann::ordered_json JsonSchema(const FieldType& type);

// The "{name}        # note: the value you produce ..." placeholder of an output field in the
// system message's structure block (no note for str); inputs never get one.
std::string FieldPlaceholder(const std::string& name, const FieldType& type, bool is_output);

// " (must be formatted as a valid Python <name>)" for non-str outputs, else "".
std::string ReminderTypeInfo(const FieldType& type);

// parse_value(text, annotation): str fields take the text as is; Literal fields match a member
// (also inside a Literal[...] wrapper or quotes); everything else goes through a lenient
// JSON/Python-literal parse and the type's validation. INVALID_ARGUMENT when it does not fit.
absl::StatusOr<nlohmann::ordered_json> ParseFieldValue(const std::string& text,
                                                       const FieldType& type);

// Validates an already-decoded JSON value (the JSON adapter's fields) against the type.
absl::StatusOr<nlohmann::ordered_json> CoerceValue(const nlohmann::ordered_json& value,
                                                   const FieldType& type);

// Whether an output field may be missing from a response (its type admits None).
bool AllowsNone(const FieldType& type);

}  // namespace elexirion::optimizer
