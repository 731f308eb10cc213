#include "server/optimizer/field_types.h"

#include <cmath>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "server/optimizer/py_format.h"

namespace elexirion::optimizer {
namespace {

using ojson = nlohmann::ordered_json;
using Kind = FieldType::Kind;

absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

std::string Trim(std::string_view s) { return std::string(absl::StripAsciiWhitespace(Sv(s))); }

// Splits "a, b[c, d], 'x, y'" at top-level commas.
std::vector<std::string> SplitTopLevel(std::string_view text, char sep) {
  std::vector<std::string> out;
  int depth = 0;
  char quote = 0;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quote != 0) {
      if (c == quote) quote = 0;
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '[' || c == '(') {
      ++depth;
    } else if (c == ']' || c == ')') {
      --depth;
    } else if (c == sep && depth == 0) {
      out.push_back(Trim(text.substr(start, i - start)));
      start = i + 1;
    }
  }
  out.push_back(Trim(text.substr(start)));
  return out;
}

FieldType Simple(Kind kind, std::string name) {
  FieldType t;
  t.kind = kind;
  t.name = std::move(name);
  return t;
}

std::string LiteralMemberName(const ojson& v) {
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    const bool has_single = s.find('\'') != std::string::npos;
    const bool has_double = s.find('"') != std::string::npos;
    if (has_single && !has_double) return absl::StrCat("\"", s, "\"");
    if (has_double && !has_single) return absl::StrCat("'", s, "'");
    return PyStringRepr(s);
  }
  return PyRepr(v);
}

absl::StatusOr<FieldType> Parse(std::string_view raw, int depth) {
  if (depth > 16) return absl::InvalidArgumentError("type nests too deeply");
  const std::string text = Trim(raw);
  if (text.empty()) return absl::InvalidArgumentError("empty type");
  // PEP 604 unions: "a | b".
  std::vector<std::string> alternatives = SplitTopLevel(text, '|');
  if (alternatives.size() > 1) {
    FieldType u = Simple(Kind::kUnion, "");
    std::vector<std::string> names;
    for (const std::string& alt : alternatives) {
      auto member = Parse(alt, depth + 1);
      if (!member.ok()) return member.status();
      names.push_back(member->name);
      u.args.push_back(std::move(*member));
    }
    u.name = absl::StrCat("UnionType[", absl::StrJoin(names, ", "), "]");
    return u;
  }
  const size_t open = text.find('[');
  std::string head = open == std::string::npos ? text : Trim(text.substr(0, open));
  std::string inner;
  if (open != std::string::npos) {
    if (text.back() != ']') {
      return absl::InvalidArgumentError(absl::StrCat("unbalanced brackets in type \"", text, "\""));
    }
    inner = text.substr(open + 1, text.size() - open - 2);
  }
  for (const char* prefix : {"typing.", "t."}) {
    if (absl::StartsWith(head, prefix)) head = head.substr(std::string(prefix).size());
  }
  if (open == std::string::npos) {
    if (head == "str") return Simple(Kind::kStr, "str");
    if (head == "int") return Simple(Kind::kInt, "int");
    if (head == "float") return Simple(Kind::kFloat, "float");
    if (head == "bool") return Simple(Kind::kBool, "bool");
    if (head == "None" || head == "NoneType") return Simple(Kind::kNone, "NoneType");
    if (head == "Any") return Simple(Kind::kAny, "Any");
    if (head == "list" || head == "List") {
      FieldType t = Simple(Kind::kList, "list");
      return t;
    }
    if (head == "dict" || head == "Dict") return Simple(Kind::kDict, "dict");
    if (head == "tuple" || head == "Tuple") return Simple(Kind::kTuple, "tuple");
    return Simple(Kind::kOther, head);
  }
  if (head == "Literal") {
    FieldType t = Simple(Kind::kLiteral, "");
    std::vector<std::string> names;
    for (const std::string& member : SplitTopLevel(inner, ',')) {
      if (member.empty()) continue;
      std::optional<ojson> value = LenientJsonLoads(member);
      ojson v = value.has_value() ? *value : ojson(member);
      names.push_back(LiteralMemberName(v));
      t.literal_values.push_back(std::move(v));
    }
    t.name = absl::StrCat("Literal[", absl::StrJoin(names, ", "), "]");
    return t;
  }
  std::vector<FieldType> args;
  std::vector<std::string> names;
  for (const std::string& arg : SplitTopLevel(inner, ',')) {
    if (arg.empty()) continue;
    auto a = Parse(arg, depth + 1);
    if (!a.ok()) return a.status();
    names.push_back(a->name);
    args.push_back(std::move(*a));
  }
  const std::string joined = absl::StrJoin(names, ", ");
  if (head == "list" || head == "List" || head == "Sequence") {
    FieldType t = Simple(Kind::kList, absl::StrCat("list[", joined, "]"));
    t.args = std::move(args);
    return t;
  }
  if (head == "dict" || head == "Dict" || head == "Mapping") {
    FieldType t = Simple(Kind::kDict, absl::StrCat("dict[", joined, "]"));
    t.args = std::move(args);
    return t;
  }
  if (head == "tuple" || head == "Tuple") {
    FieldType t = Simple(Kind::kTuple, absl::StrCat("tuple[", joined, "]"));
    t.args = std::move(args);
    return t;
  }
  if (head == "Optional") {
    FieldType t = Simple(Kind::kUnion, "");
    t.args = std::move(args);
    t.args.push_back(Simple(Kind::kNone, "NoneType"));
    std::vector<std::string> all;
    for (const FieldType& a : t.args) all.push_back(a.name);
    t.name = absl::StrCat("Union[", absl::StrJoin(all, ", "), "]");
    return t;
  }
  if (head == "Union") {
    FieldType t = Simple(Kind::kUnion, absl::StrCat("Union[", joined, "]"));
    t.args = std::move(args);
    return t;
  }
  FieldType t = Simple(Kind::kOther, absl::StrCat(head, "[", joined, "]"));
  t.args = std::move(args);
  return t;
}

// Keys sorted with "type" first, recursively (DSPy's move_type_to_front).
ojson TypeFirst(const ojson& v) {
  if (v.is_object()) {
    std::vector<std::string> keys;
    for (auto it = v.begin(); it != v.end(); ++it) keys.push_back(it.key());
    std::sort(keys.begin(), keys.end(), [](const std::string& a, const std::string& b) {
      if ((a == "type") != (b == "type")) return a == "type";
      return a < b;
    });
    ojson out = ojson::object();
    for (const std::string& k : keys) out[k] = TypeFirst(v.at(k));
    return out;
  }
  if (v.is_array()) {
    ojson out = ojson::array();
    for (const ojson& item : v) out.push_back(TypeFirst(item));
    return out;
  }
  return v;
}

ojson RawSchema(const FieldType& t) {
  switch (t.kind) {
    case Kind::kStr:
      return ojson{{"type", "string"}};
    case Kind::kInt:
      return ojson{{"type", "integer"}};
    case Kind::kFloat:
      return ojson{{"type", "number"}};
    case Kind::kBool:
      return ojson{{"type", "boolean"}};
    case Kind::kNone:
      return ojson{{"type", "null"}};
    case Kind::kList: {
      ojson s = ojson::object();
      s["items"] = t.args.empty() ? ojson::object() : RawSchema(t.args[0]);
      s["type"] = "array";
      return s;
    }
    case Kind::kTuple: {
      ojson s = ojson::object();
      if (t.args.empty()) {
        s["items"] = ojson::object();
      } else {
        ojson items = ojson::array();
        for (const FieldType& a : t.args) items.push_back(RawSchema(a));
        s["maxItems"] = t.args.size();
        s["minItems"] = t.args.size();
        s["prefixItems"] = items;
      }
      s["type"] = "array";
      return s;
    }
    case Kind::kDict: {
      ojson s = ojson::object();
      if (t.args.size() >= 2 && t.args[1].kind != Kind::kAny) {
        s["additionalProperties"] = RawSchema(t.args[1]);
      } else {
        s["additionalProperties"] = true;
      }
      s["type"] = "object";
      return s;
    }
    case Kind::kLiteral: {
      ojson s = ojson::object();
      s["enum"] = t.literal_values;
      bool all_strings = true;
      for (const ojson& v : t.literal_values) all_strings = all_strings && v.is_string();
      if (all_strings) s["type"] = "string";
      return s;
    }
    case Kind::kUnion: {
      ojson any = ojson::array();
      for (const FieldType& a : t.args) any.push_back(RawSchema(a));
      return ojson{{"anyOf", any}};
    }
    case Kind::kAny:
    case Kind::kOther:
      return ojson::object();
  }
  return ojson::object();
}

bool Truthy(absl::string_view s, bool* out) {
  const std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(s));
  if (lower == "true" || lower == "t" || lower == "yes" || lower == "y" || lower == "on" ||
      lower == "1") {
    *out = true;
    return true;
  }
  if (lower == "false" || lower == "f" || lower == "no" || lower == "n" || lower == "off" ||
      lower == "0") {
    *out = false;
    return true;
  }
  return false;
}

absl::Status Mismatch(const FieldType& t, const ojson& v) {
  return absl::InvalidArgumentError(absl::StrCat("value ", PyRepr(v), " is not a valid ", t.name));
}

}  // namespace

absl::StatusOr<FieldType> ParseFieldType(std::string_view text) { return Parse(text, 0); }

ojson JsonSchema(const FieldType& type) { return TypeFirst(RawSchema(type)); }

std::string FieldPlaceholder(const std::string& name, const FieldType& type, bool is_output) {
  std::string desc;
  if (is_output && type.kind != Kind::kStr) {
    switch (type.kind) {
      case Kind::kBool:
        desc = "must be True or False";
        break;
      case Kind::kInt:
        desc = "must be a single int value";
        break;
      case Kind::kFloat:
        desc = "must be a single float value";
        break;
      case Kind::kLiteral: {
        std::vector<std::string> members;
        for (const ojson& v : type.literal_values) members.push_back(PyStr(v));
        desc = absl::StrCat("must exactly match (no extra characters) one of: ",
                            absl::StrJoin(members, "; "));
        break;
      }
      default:
        desc = absl::StrCat("must adhere to the JSON schema: ", PyJsonDumps(JsonSchema(type)));
    }
  }
  std::string out = absl::StrCat("{", name, "}");
  if (!desc.empty())
    absl::StrAppend(&out, std::string(8, ' '), "# note: the value you produce ", desc);
  return out;
}

std::string ReminderTypeInfo(const FieldType& type) {
  if (type.kind == Kind::kStr) return "";
  return absl::StrCat(" (must be formatted as a valid Python ", type.name, ")");
}

bool AllowsNone(const FieldType& type) {
  if (type.kind == Kind::kNone) return true;
  if (type.kind == Kind::kUnion) {
    for (const FieldType& a : type.args) {
      if (AllowsNone(a)) return true;
    }
  }
  return false;
}

absl::StatusOr<ojson> CoerceValue(const ojson& v, const FieldType& t) {
  switch (t.kind) {
    case Kind::kStr:
      if (v.is_string()) return v;
      return Mismatch(t, v);
    case Kind::kInt:
      if (v.is_number_integer()) return v;
      if (v.is_number_float()) {
        const double d = v.get<double>();
        if (std::isfinite(d) && std::floor(d) == d) return ojson(static_cast<int64_t>(d));
        return Mismatch(t, v);
      }
      if (v.is_boolean()) return ojson(v.get<bool>() ? 1 : 0);
      if (v.is_string()) {
        const std::string s = std::string(absl::StripAsciiWhitespace(v.get<std::string>()));
        std::optional<ojson> parsed = LenientJsonLoads(s);
        if (parsed.has_value() && parsed->is_number()) return CoerceValue(*parsed, t);
      }
      return Mismatch(t, v);
    case Kind::kFloat:
      if (v.is_number()) return ojson(v.get<double>());
      if (v.is_boolean()) return ojson(v.get<bool>() ? 1.0 : 0.0);
      if (v.is_string()) {
        const std::string s = std::string(absl::StripAsciiWhitespace(v.get<std::string>()));
        std::optional<ojson> parsed = LenientJsonLoads(s);
        if (parsed.has_value() && parsed->is_number()) return ojson(parsed->get<double>());
        if (s == "inf" || s == "infinity") return ojson(HUGE_VAL);
      }
      return Mismatch(t, v);
    case Kind::kBool: {
      if (v.is_boolean()) return v;
      if (v.is_number_integer()) {
        const int64_t i = v.get<int64_t>();
        if (i == 0 || i == 1) return ojson(i == 1);
      }
      if (v.is_number_float()) {
        const double d = v.get<double>();
        if (d == 0 || d == 1) return ojson(d == 1);
      }
      bool b = false;
      if (v.is_string() && Truthy(v.get<std::string>(), &b)) return ojson(b);
      return Mismatch(t, v);
    }
    case Kind::kNone:
      if (v.is_null()) return v;
      return Mismatch(t, v);
    case Kind::kList:
    case Kind::kTuple: {
      if (!v.is_array()) return Mismatch(t, v);
      ojson out = ojson::array();
      for (size_t i = 0; i < v.size(); ++i) {
        const FieldType* item = nullptr;
        if (t.kind == Kind::kList && !t.args.empty()) item = &t.args[0];
        if (t.kind == Kind::kTuple && i < t.args.size()) item = &t.args[i];
        if (item == nullptr) {
          out.push_back(v[i]);
          continue;
        }
        auto c = CoerceValue(v[i], *item);
        if (!c.ok()) return c.status();
        out.push_back(std::move(*c));
      }
      return out;
    }
    case Kind::kDict: {
      if (!v.is_object()) return Mismatch(t, v);
      if (t.args.size() < 2) return v;
      ojson out = ojson::object();
      for (auto it = v.begin(); it != v.end(); ++it) {
        auto c = CoerceValue(it.value(), t.args[1]);
        if (!c.ok()) return c.status();
        out[it.key()] = std::move(*c);
      }
      return out;
    }
    case Kind::kLiteral:
      for (const ojson& allowed : t.literal_values) {
        if (allowed == v) return v;
      }
      return Mismatch(t, v);
    case Kind::kUnion:
      for (const FieldType& a : t.args) {
        auto c = CoerceValue(v, a);
        if (c.ok()) return c;
      }
      return Mismatch(t, v);
    case Kind::kAny:
    case Kind::kOther:
      return v;
  }
  return v;
}

absl::StatusOr<ojson> ParseFieldValue(const std::string& text, const FieldType& t) {
  if (t.kind == Kind::kStr) return ojson(text);
  if (t.kind == Kind::kLiteral) {
    for (const ojson& allowed : t.literal_values) {
      if (allowed.is_string() && allowed.get<std::string>() == text) return allowed;
    }
    std::string v(absl::StripAsciiWhitespace(text));
    if ((absl::StartsWith(v, "Literal[") || absl::StartsWith(v, "str[")) &&
        absl::EndsWith(v, "]")) {
      v = v.substr(v.find('[') + 1);
      v.pop_back();
    }
    if (v.size() > 1 && v.front() == v.back() && (v.front() == '"' || v.front() == '\'')) {
      v = v.substr(1, v.size() - 2);
    }
    for (const ojson& allowed : t.literal_values) {
      if (allowed.is_string() ? allowed.get<std::string>() == v : PyStr(allowed) == v) {
        return allowed;
      }
    }
    return absl::InvalidArgumentError(absl::StrCat(PyStringRepr(text), " is not one of ", t.name));
  }
  if (t.kind == Kind::kUnion) {
    bool has_str = false;
    for (const FieldType& a : t.args) has_str = has_str || a.kind == Kind::kStr;
    if (has_str && AllowsNone(t)) return ojson(text);
  }
  std::optional<ojson> candidate = LenientJsonLoads(text);
  ojson value = candidate.has_value() ? *candidate : ojson(text);
  return CoerceValue(value, t);
}

}  // namespace elexirion::optimizer
