#include "server/pipeline/signature.h"

#include <cctype>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "server/pipeline/strings.h"

namespace elexirion::pipeline {
namespace {

absl::string_view Trim(absl::string_view s) { return absl::StripAsciiWhitespace(s); }

bool IsIdentifier(absl::string_view s) {
  if (s.empty()) return false;
  const auto first = static_cast<unsigned char>(s[0]);
  if (!(std::isalpha(first) || first == '_')) return false;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (!(std::isalnum(u) || u == '_')) return false;
  }
  return true;
}

// Splits on commas at bracket depth 0 and outside quotes.
absl::StatusOr<std::vector<absl::string_view>> SplitTopLevel(absl::string_view side,
                                                             absl::string_view whole) {
  std::vector<absl::string_view> out;
  int depth = 0;
  char quote = 0;
  size_t start = 0;
  for (size_t i = 0; i < side.size(); ++i) {
    const char c = side[i];
    if (quote != 0) {
      if (c == '\\') {
        ++i;
      } else if (c == quote) {
        quote = 0;
      }
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '[' || c == '(' || c == '{') {
      ++depth;
    } else if (c == ']' || c == ')' || c == '}') {
      if (--depth < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("signature \"", whole, "\": unbalanced '", std::string(1, c), "'"));
      }
    } else if (c == ',' && depth == 0) {
      out.push_back(side.substr(start, i - start));
      start = i + 1;
    }
  }
  if (depth != 0 || quote != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("signature \"", whole, "\": unbalanced brackets or quotes"));
  }
  out.push_back(side.substr(start));
  return out;
}

absl::StatusOr<std::vector<SignatureField>> ParseSide(absl::string_view side,
                                                      absl::string_view whole,
                                                      absl::string_view which) {
  auto parts = SplitTopLevel(side, whole);
  if (!parts.ok()) return parts.status();
  std::vector<SignatureField> fields;
  for (absl::string_view raw : *parts) {
    absl::string_view part = Trim(raw);
    if (part.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("signature \"", whole, "\": empty field in the ", which));
    }
    SignatureField field;
    const size_t colon = part.find(':');
    absl::string_view name = part;
    if (colon != absl::string_view::npos) {
      name = Trim(part.substr(0, colon));
      absl::string_view type = Trim(part.substr(colon + 1));
      if (type.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("signature \"", whole, "\": field \"", name, "\" has an empty type"));
      }
      field.type = std::string(type);
      field.type_declared = true;
    }
    if (!IsIdentifier(name)) {
      return absl::InvalidArgumentError(absl::StrCat("signature \"", whole, "\": field name \"",
                                                     name, "\" is not an identifier"));
    }
    field.name = std::string(name);
    fields.push_back(std::move(field));
  }
  return fields;
}

std::string JoinFields(const std::vector<SignatureField>& fields) {
  return absl::StrJoin(fields, ", ", [](std::string* out, const SignatureField& f) {
    absl::StrAppend(out, f.name);
    if (f.type_declared) absl::StrAppend(out, ": ", f.type);
  });
}

std::string BacktickNames(const std::vector<SignatureField>& fields) {
  return absl::StrJoin(fields, ", ", [](std::string* out, const SignatureField& f) {
    absl::StrAppend(out, "`", f.name, "`");
  });
}

std::vector<std::string> Names(const std::vector<SignatureField>& fields) {
  std::vector<std::string> out;
  out.reserve(fields.size());
  for (const auto& f : fields) out.push_back(f.name);
  return out;
}

}  // namespace

std::string Signature::ToString() const {
  return absl::StrCat(JoinFields(inputs), " -> ", JoinFields(outputs));
}

std::vector<std::string> Signature::InputNames() const { return Names(inputs); }
std::vector<std::string> Signature::OutputNames() const { return Names(outputs); }
std::vector<std::string> Signature::FieldNames() const {
  std::vector<std::string> out = Names(inputs);
  for (const auto& f : outputs) out.push_back(f.name);
  return out;
}

std::string DefaultInstructions(const Signature& signature) {
  return absl::StrCat("Given the fields ", BacktickNames(signature.inputs), ", produce the fields ",
                      BacktickNames(signature.outputs), ".");
}

absl::StatusOr<Signature> ParseSignature(std::string_view text_in, std::string instructions) {
  const absl::string_view text = Sv(text_in);
  const size_t arrow = text.find("->");
  if (arrow == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("signature \"", text, "\": expected \"inputs -> outputs\""));
  }
  if (text.find("->", arrow + 2) != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("signature \"", text, "\": more than one \"->\""));
  }
  auto inputs = ParseSide(text.substr(0, arrow), text, "inputs");
  if (!inputs.ok()) return inputs.status();
  auto outputs = ParseSide(text.substr(arrow + 2), text, "outputs");
  if (!outputs.ok()) return outputs.status();
  std::set<std::string> seen;
  for (const auto* side : {&*inputs, &*outputs}) {
    for (const auto& f : *side) {
      if (!seen.insert(f.name).second) {
        return absl::InvalidArgumentError(
            absl::StrCat("signature \"", text, "\": field \"", f.name, "\" appears twice"));
      }
    }
  }
  Signature signature;
  signature.inputs = std::move(*inputs);
  signature.outputs = std::move(*outputs);
  signature.instructions =
      instructions.empty() ? DefaultInstructions(signature) : std::move(instructions);
  return signature;
}

}  // namespace elexirion::pipeline
