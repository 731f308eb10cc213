// DSPy string signatures: "question, context: list[str] -> answer, confidence: float".
//
// Grammar (a subset of DSPy's, which parses each side as a Python parameter list):
//   signature := fields "->" fields
//   fields    := field ("," field)*
//   field     := identifier [":" type]
// A type may contain brackets and commas ("dict[str, int]", "Literal['a', 'b']"); commas
// inside brackets or quotes do not split fields. A field without a type is "str" with
// type_declared = false. Exactly one "->"; each side needs at least one field; names must be
// unique across both sides.
//
// Instructions default to DSPy's sentence: Given the fields `a`, `b`, produce the fields `c`.
//
// Thread safety: plain values; functions are reentrant.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace elexirion::pipeline {

struct SignatureField {
  std::string name;
  std::string type = "str";
  bool type_declared = false;
  // Free text; not part of the string syntax (set it programmatically).
  std::string description;
};

struct Signature {
  std::vector<SignatureField> inputs;
  std::vector<SignatureField> outputs;
  std::string instructions;

  // "a, b: int -> c" (types shown only when declared).
  std::string ToString() const;
  std::vector<std::string> InputNames() const;
  std::vector<std::string> OutputNames() const;
  // Inputs then outputs, as DSPy orders `fields`.
  std::vector<std::string> FieldNames() const;
};

// The design document's default for steps that declare none.
inline constexpr std::string_view kDefaultSignature = "input_data -> pipeline_output";

// INVALID_ARGUMENT naming the problem ("signature \"a b\": field name \"a b\" is not an
// identifier"). `instructions` empty -> DefaultInstructions().
absl::StatusOr<Signature> ParseSignature(std::string_view text, std::string instructions = "");

// "Given the fields `a`, `b`, produce the fields `c`."
std::string DefaultInstructions(const Signature& signature);

}  // namespace elexirion::pipeline
