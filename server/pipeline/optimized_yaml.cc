#include "server/pipeline/optimized_yaml.h"

#include <charconv>
#include <cstdio>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/pipeline/strings.h"

namespace elexirion::pipeline {
namespace {

using ojson = nlohmann::ordered_json;

constexpr size_t kMaxImplicitKey = 1000;

// Decodes one UTF-8 code point at s[i]; returns its length (1 for invalid bytes, cp = byte).
size_t DecodeUtf8(absl::string_view s, size_t i, uint32_t* cp) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  auto cont = [&](size_t k) {
    return i + k < s.size() && (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
  };
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  if ((b0 & 0xE0) == 0xC0 && cont(1)) {
    *cp = ((b0 & 0x1Fu) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3Fu);
    return 2;
  }
  if ((b0 & 0xF0) == 0xE0 && cont(1) && cont(2)) {
    *cp = ((b0 & 0x0Fu) << 12) | ((static_cast<unsigned char>(s[i + 1]) & 0x3Fu) << 6) |
          (static_cast<unsigned char>(s[i + 2]) & 0x3Fu);
    return 3;
  }
  if ((b0 & 0xF8) == 0xF0 && cont(1) && cont(2) && cont(3)) {
    *cp = ((b0 & 0x07u) << 18) | ((static_cast<unsigned char>(s[i + 1]) & 0x3Fu) << 12) |
          ((static_cast<unsigned char>(s[i + 2]) & 0x3Fu) << 6) |
          (static_cast<unsigned char>(s[i + 3]) & 0x3Fu);
    return 4;
  }
  *cp = b0;
  return 1;
}

// Characters that need escaping in YAML text: C0/C1 controls (tab and newline aside), DEL,
// the Unicode line/paragraph separators, the BOM, and bytes that are not UTF-8.
bool NeedsEscape(uint32_t cp, size_t len) {
  if (len == 1 && cp >= 0x80) return true;  // invalid UTF-8
  if (cp == '\t' || cp == '\n') return false;
  return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0xFEFF;
}

bool HasSpecialChars(absl::string_view s, bool allow_newline) {
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = 0;
    const size_t len = DecodeUtf8(s, i, &cp);
    if (NeedsEscape(cp, len)) return true;
    if (!allow_newline && cp == '\n') return true;
    i += len;
  }
  return false;
}

// Would a plain scalar with this text load as something other than this string?
bool LooksTyped(absl::string_view s) {
  static const char* kWords[] = {"null",  "Null",  "NULL",  "~",   "true", "True", "TRUE",
                                 "false", "False", "FALSE", "yes", "Yes",  "YES",  "no",
                                 "No",    "NO",    "on",    "On",  "ON",   "off",  "Off",
                                 "OFF",   "y",     "Y",     "n",   "N"};
  for (const char* w : kWords) {
    if (s == w) return true;
  }
  // Anything starting like a number (ints, floats, .inf, .nan, 0x, 0o, dates, versions).
  const char c = s[0];
  if ((c >= '0' && c <= '9') || c == '.' || c == '+' || c == '-') return true;
  return false;
}

bool PlainSafe(absl::string_view s) {
  // Long text is quoted: the loader refuses plain scalars over 64 KiB on one line.
  if (s.empty() || s.size() > 1024 || LooksTyped(s)) return false;
  if (absl::ascii_isspace(static_cast<unsigned char>(s.front())) ||
      absl::ascii_isspace(static_cast<unsigned char>(s.back()))) {
    return false;
  }
  if (absl::string_view("-?:,[]{}#&*!|>'\"%@`").find(s.front()) != absl::string_view::npos) {
    return false;
  }
  if (s.back() == ':') return false;
  if (absl::StrContains(s, ": ") || absl::StrContains(s, " #") || absl::StrContains(s, "\t")) {
    return false;
  }
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c >= 0x7F) return false;  // keep plain scalars ASCII
  }
  return true;
}

std::string DoubleQuoted(absl::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = 0;
    const size_t len = DecodeUtf8(s, i, &cp);
    char buf[16];
    if (len == 1 && cp >= 0x80) {
      // Not UTF-8: YAML cannot carry the raw byte; keep it as the Latin-1 code point.
      std::snprintf(buf, sizeof(buf), "\\x%02X", cp);
      out += buf;
    } else if (cp == '"') {
      out += "\\\"";
    } else if (cp == '\\') {
      out += "\\\\";
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (NeedsEscape(cp, len)) {
      std::snprintf(buf, sizeof(buf), cp <= 0xFF ? "\\x%02X" : "\\u%04X", cp);
      out += buf;
    } else {
      out.append(s.data() + i, len);
    }
    i += len;
  }
  out += "\"";
  return out;
}

// A literal block (|) for multi-line text when it is representable exactly; "" otherwise.
std::string LiteralBlock(absl::string_view s, int indent) {
  if (s.find('\n') == absl::string_view::npos || HasSpecialChars(s, /*allow_newline=*/true)) {
    return "";
  }
  // Trailing newlines decide the chomping indicator.
  size_t body_end = s.size();
  while (body_end > 0 && s[body_end - 1] == '\n') --body_end;
  if (body_end == 0) return "";  // only newlines
  const size_t trailing = s.size() - body_end;
  absl::string_view body = s.substr(0, body_end);
  std::vector<absl::string_view> lines = absl::StrSplit(body, '\n');
  // The first non-empty line fixes the indentation unless we state it.
  bool needs_indicator = false;
  for (absl::string_view line : lines) {
    if (line.empty()) continue;
    needs_indicator = line.front() == ' ';
    break;
  }
  // A leading line of spaces only would also confuse detection; state the indent then too.
  if (!lines.empty() && !lines.front().empty() &&
      lines.front().find_first_not_of(' ') == absl::string_view::npos) {
    needs_indicator = true;
  }
  std::string out = "|";
  if (needs_indicator) absl::StrAppend(&out, 2);
  out += trailing == 0 ? "-" : trailing == 1 ? "" : "+";
  const std::string pad(static_cast<size_t>(indent), ' ');
  for (absl::string_view line : lines) {
    out += "\n";
    if (!line.empty()) absl::StrAppend(&out, pad, line);
  }
  for (size_t i = 1; i < trailing; ++i) out += "\n";
  return out;
}

std::string Scalar(const ojson& v, int indent, bool is_key) {
  switch (v.type()) {
    case ojson::value_t::null:
      return "null";
    case ojson::value_t::boolean:
      return v.get<bool>() ? "true" : "false";
    case ojson::value_t::number_integer:
    case ojson::value_t::number_unsigned:
      return v.dump();
    case ojson::value_t::number_float: {
      char buf[64];
      auto r = std::to_chars(buf, buf + sizeof(buf), v.get<double>());
      std::string text(buf, r.ptr);
      if (text.find_first_of(".eEn") == std::string::npos) {
        text += ".0";
      } else if (text.find('.') == std::string::npos && text.find('e') != std::string::npos) {
        text.insert(text.find('e'), ".0");
      }
      return text;
    }
    case ojson::value_t::string: {
      const std::string& s = v.get_ref<const std::string&>();
      if (PlainSafe(s)) return s;
      if (!is_key) {
        std::string literal = LiteralBlock(s, indent);
        if (!literal.empty()) return literal;
      }
      return DoubleQuoted(s);
    }
    default:
      return "null";
  }
}

bool IsCollection(const ojson& v) { return v.is_object() || v.is_array(); }

void Emit(std::string* out, const ojson& v, int indent);

// The value after "key:" or "- ": inline scalars and empty collections, nested blocks below.
void EmitAfterIndicator(std::string* out, const ojson& v, int indent) {
  if (!IsCollection(v)) {
    absl::StrAppend(out, " ", Scalar(v, indent, false), "\n");
  } else if (v.empty()) {
    absl::StrAppend(out, v.is_object() ? " {}\n" : " []\n");
  } else {
    out->push_back('\n');
    Emit(out, v, indent);
  }
}

void Emit(std::string* out, const ojson& v, int indent) {
  const std::string pad(static_cast<size_t>(indent), ' ');
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      const std::string key = Scalar(ojson(it.key()), indent, true);
      if (key.size() > kMaxImplicitKey) {
        // YAML caps implicit keys at 1024 characters; longer ones need the explicit form.
        absl::StrAppend(out, pad, "? ", key, "\n", pad, ":");
      } else {
        absl::StrAppend(out, pad, key, ":");
      }
      EmitAfterIndicator(out, it.value(), indent + 2);
    }
  } else if (v.is_array()) {
    for (const ojson& item : v) {
      if (item.is_object() && !item.empty()) {
        // "- key: value" with the following keys aligned under the first.
        std::string nested;
        Emit(&nested, item, indent + 2);
        absl::StrAppend(out, pad, "- ", nested.substr(static_cast<size_t>(indent) + 2));
      } else {
        absl::StrAppend(out, pad, "-");
        EmitAfterIndicator(out, item, indent + 2);
      }
    }
  } else {
    absl::StrAppend(out, pad, Scalar(v, indent, false), "\n");
  }
}

// previous_response parts spelled with `name:` get `step:` (same position), recursively.
void NormalizePreviousResponse(ojson* v) {
  if (v->is_array()) {
    for (ojson& item : *v) NormalizePreviousResponse(&item);
    return;
  }
  if (!v->is_object()) return;
  auto type = v->find("type");
  if (type != v->end() && *type == "previous_response" && !v->contains("step") &&
      v->contains("name")) {
    ojson renamed = ojson::object();
    for (auto it = v->begin(); it != v->end(); ++it) {
      renamed[it.key() == "name" ? std::string("step") : it.key()] = it.value();
    }
    *v = std::move(renamed);
    return;
  }
  for (auto it = v->begin(); it != v->end(); ++it) NormalizePreviousResponse(&it.value());
}

}  // namespace

std::string EmitYaml(const ojson& document) {
  std::string out;
  if (IsCollection(document) && !document.empty()) {
    Emit(&out, document, 0);
  } else if (IsCollection(document)) {
    out = document.is_object() ? "{}\n" : "[]\n";
  } else {
    out = Scalar(document, 0, false) + "\n";
  }
  return out;
}

namespace {

// Writes the program's prompts for `steps` (and the steps inside them) into `document`, the
// document those steps were loaded from; true when anything changed.
absl::StatusOr<bool> ApplyToDocument(const std::vector<Step>& steps, const ProgramState& program,
                                     ojson* document) {
  bool changed = false;
  for (const Step& step : steps) {
    const ojson::json_pointer pointer(step.document_pointer);
    const bool present = !step.document_pointer.empty() && document->contains(pointer);
    auto missing = [&] {
      return absl::InvalidArgumentError(
          absl::StrCat("step \"", step.path, "\" is not in the exported document"));
    };
    auto it = program.steps.find(step.path);
    if (it != program.steps.end() && !it->second.empty()) {
      if (!present) return missing();
      auto parts = ApplyProgram(step, it->second);
      if (!parts.ok()) return parts.status();
      ojson prompt = ojson::array();
      for (const PromptPart& part : *parts) prompt.push_back(part.source);
      (*document)[pointer]["prompt"] = std::move(prompt);
      changed = true;
    }
    auto sub = ApplyToDocument(step.sub_steps, program, document);
    if (!sub.ok()) return sub.status();
    changed = changed || *sub;
    if (step.child == nullptr) continue;
    if (step.child_file.empty()) {
      auto child = ApplyToDocument(step.child->steps, program, document);
      if (!child.ok()) return child.status();
      changed = changed || *child;
      continue;
    }
    // A learned step inside a pipeline_file: the exported pipeline inlines that file, so it
    // stands alone and renders the learned prompts without a program.
    ojson child_document = step.child->document;
    auto child = ApplyToDocument(step.child->steps, program, &child_document);
    if (!child.ok()) return child.status();
    if (*child) {
      if (!present) return missing();
      ojson& node = (*document)[pointer];
      node.erase("pipeline_file");
      node["pipeline"] = child_document["workflow"];
      changed = true;
    }
  }
  return changed;
}

}  // namespace

absl::StatusOr<std::string> RenderOptimizedYaml(const Pipeline& pipeline,
                                                const ProgramState& program) {
  if (absl::Status s = ValidateProgram(pipeline, program); !s.ok()) return s;
  ojson document = pipeline.document;
  if (!document.is_object() || !document.contains("workflow") ||
      !document["workflow"].is_object() || !document["workflow"].contains("steps") ||
      !document["workflow"]["steps"].is_array()) {
    return absl::InvalidArgumentError("pipeline has no workflow.steps document to export");
  }
  auto applied = ApplyToDocument(pipeline.steps, program, &document);
  if (!applied.ok()) return applied.status();
  NormalizePreviousResponse(&document);
  return EmitYaml(document);
}

}  // namespace elexirion::pipeline
