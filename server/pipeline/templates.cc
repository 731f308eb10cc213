#include "server/pipeline/templates.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "server/pipeline/elixir_format.h"
#include "server/pipeline/strings.h"

namespace elexirion::pipeline {
namespace {

using json = nlohmann::json;

absl::string_view Trim(absl::string_view s) { return absl::StripAsciiWhitespace(s); }

bool IsIdentStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsIdentChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// ^[a-zA-Z_][a-zA-Z0-9_]*\s*\(
bool LooksLikeCall(absl::string_view e) {
  if (e.empty() || !IsIdentStart(e[0])) return false;
  size_t i = 1;
  while (i < e.size() && IsIdentChar(e[i])) ++i;
  while (i < e.size() && std::isspace(static_cast<unsigned char>(e[i]))) ++i;
  return i < e.size() && e[i] == '(';
}

json Preserved(absl::string_view expression) { return absl::StrCat("{{", expression, "}}"); }

// A template expression; `with_context` selects evaluate_expression_with_context (the
// executor's interpolation) over evaluate_expression (set_variable's resolution).
// Evaluates template expressions over a caller-owned context. Immutable after construction.
class Evaluator {
 public:
  Evaluator(const TemplateContext& context, bool with_context)
      : context_(context), with_context_(with_context) {}

  absl::StatusOr<json> Evaluate(absl::string_view e) const {
    if (LooksLikeCall(e)) return FunctionCall(e);
    if (with_context_) {
      if (absl::StartsWith(e, "inputs.")) return Inputs(e);
      if (absl::StartsWith(e, "global_vars.")) {
        json v = GlobalVar(e.substr(12));
        return v.is_null() ? Preserved(e) : v;
      }
      if (absl::StartsWith(e, "steps.")) return StepResult(e);
      if (context_.loop != nullptr && (e == "loop" || absl::StartsWith(e, "loop."))) {
        std::vector<std::string> parts = absl::StrSplit(e, '.');
        json v = Nested(*context_.loop, parts, 1);
        return v.is_null() ? json("") : v;
      }
    }
    if (e.find_first_of("+-*/") != absl::string_view::npos) return Arithmetic(e);
    if (absl::StartsWith(e, "state.")) return NestedVariable(e.substr(6));
    return GetVariable(*context_.state, std::string(e));
  }

 private:
  json GlobalVar(absl::string_view key) const {
    if (!with_context_ || context_.global_vars == nullptr || !context_.global_vars->is_object()) {
      return nullptr;
    }
    auto it = context_.global_vars->find(std::string(key));
    return it == context_.global_vars->end() ? json() : *it;
  }

  static json Nested(const json& data, const std::vector<std::string>& path, size_t from) {
    const json* cur = &data;
    for (size_t i = from; i < path.size(); ++i) {
      if (!cur->is_object()) return nullptr;
      auto it = cur->find(path[i]);
      if (it == cur->end() || it->is_null()) return nullptr;
      cur = &*it;
    }
    return *cur;
  }

  json InputValue(const std::string& name) const {
    if (!with_context_ || context_.inputs == nullptr || !context_.inputs->is_object()) {
      return nullptr;
    }
    auto it = context_.inputs->find(name);
    return it == context_.inputs->end() ? json() : *it;
  }

  json Inputs(absl::string_view e) const {
    std::vector<std::string> parts = absl::StrSplit(e.substr(7), '.');
    json value = InputValue(parts[0]);
    const bool truthy = !(value.is_null() || (value.is_boolean() && !value.get<bool>()));
    if (truthy && parts.size() > 1) {
      json nested = Nested(value, parts, 1);
      if (nested.is_null() || (nested.is_boolean() && !nested.get<bool>())) return Preserved(e);
      return nested;
    }
    if (!value.is_null()) return value;
    return Preserved(e);
  }

  json StepLookup(absl::string_view e) const {
    std::vector<std::string> parts = absl::StrSplit(e, '.');
    if (!with_context_ || context_.results == nullptr) return Preserved(absl::StrCat("steps.", e));
    auto it = context_.results->find(parts[0]);
    if (it == context_.results->end() || it->is_null()) {
      return Preserved(absl::StrCat("steps.", e));
    }
    const json& step_result = *it;
    if (parts.size() == 1) return step_result;
    json value = Nested(step_result, parts, 1);
    if (value.is_null()) {
      const bool only_result = parts.size() == 2 && parts[1] == "result";
      if (step_result.is_object()) {
        auto wrapped = step_result.find("result");
        if (wrapped == step_result.end() || wrapped->is_null()) {
          if (only_result) value = step_result;
        } else {
          value = Nested(*wrapped, parts, 1);
        }
      } else if (only_result) {
        value = step_result;
      }
    }
    if (value.is_null()) return Preserved(absl::StrCat("steps.", e));
    return value;
  }

  json StepResult(absl::string_view e) const { return StepLookup(e.substr(6)); }

  json NestedVariable(absl::string_view path) const {
    const VariableState& s = *context_.state;
    json all = s.global;
    for (const json* scope : {&s.session, &s.loop}) {
      for (auto it = scope->begin(); it != scope->end(); ++it) all[it.key()] = it.value();
    }
    std::vector<std::string> parts = absl::StrSplit(path, '.');
    const json* cur = &all;
    for (const auto& part : parts) {
      if (!cur->is_object()) return nullptr;
      auto it = cur->find(part);
      if (it == cur->end()) return nullptr;
      cur = &*it;
    }
    return *cur;
  }

  // VariableEngine.evaluate_arithmetic.
  absl::StatusOr<json> Arithmetic(absl::string_view e) const {
    std::string resolved;
    const bool has_state = absl::StrContains(e, "state.");
    // state\.([a-zA-Z_][a-zA-Z0-9_.]*) -> value (missing: 0)
    for (size_t i = 0; i < e.size();) {
      if (e.compare(i, 6, "state.") == 0 && i + 6 < e.size() && IsIdentStart(e[i + 6])) {
        size_t j = i + 7;
        while (j < e.size() && (IsIdentChar(e[j]) || e[j] == '.')) ++j;
        json v = NestedVariable(e.substr(i + 6, j - i - 6));
        if (v.is_null()) {
          resolved += "0";
        } else {
          auto text = ElixirToString(v);
          if (!text.ok()) return text.status();
          resolved += *text;
        }
        i = j;
      } else {
        resolved.push_back(e[i]);
        ++i;
      }
    }
    if (!has_state) {
      // \b([a-zA-Z_][a-zA-Z0-9_]*)\b -> variable (missing: 0)
      std::string out;
      for (size_t i = 0; i < resolved.size();) {
        const bool boundary = i == 0 || !IsIdentChar(resolved[i - 1]);
        if (boundary && IsIdentStart(resolved[i])) {
          size_t j = i + 1;
          while (j < resolved.size() && IsIdentChar(resolved[j])) ++j;
          json v = GetVariable(*context_.state, resolved.substr(i, j - i));
          if (v.is_null()) {
            out += "0";
          } else {
            auto text = ElixirToString(v);
            if (!text.ok()) return text.status();
            out += *text;
          }
          i = j;
        } else {
          out.push_back(resolved[i]);
          ++i;
        }
      }
      resolved = std::move(out);
    }
    int64_t result = 0;
    if (SimpleArithmetic(resolved, &result)) return json(result);
    return json(resolved);
  }

  // Elixir Integer.parse/1 that must consume the whole (trimmed) text.
  static bool ParseInt(absl::string_view s, int64_t* out) {
    s = Trim(s);
    if (s.empty()) return false;
    bool negative = false;
    if (s[0] == '+' || s[0] == '-') {
      negative = s[0] == '-';
      s.remove_prefix(1);
    }
    if (s.empty()) return false;
    for (char c : s) {
      if (c < '0' || c > '9') return false;
    }
    uint64_t v = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || v > static_cast<uint64_t>(INT64_MAX)) return false;
    *out = negative ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
    return true;
  }

  static bool SplitOnce(absl::string_view s, absl::string_view sep, absl::string_view* left,
                        absl::string_view* right) {
    const size_t pos = s.find(sep);
    if (pos == absl::string_view::npos) return false;
    *left = s.substr(0, pos);
    *right = s.substr(pos + sep.size());
    return true;
  }

  // VariableEngine.evaluate_simple_arithmetic.
  static bool SimpleArithmetic(absl::string_view expr, int64_t* out) {
    absl::string_view t = Trim(expr);
    if (t.empty()) {
      *out = 0;
      return true;
    }
    absl::string_view l, r;
    int64_t a = 0, b = 0;
    auto both = [&]() { return ParseInt(l, &a) && ParseInt(r, &b); };
    if (SplitOnce(t, " + ", &l, &r) || SplitOnce(t, "+", &l, &r)) {
      if (!both()) return false;
      *out = a + b;
      return true;
    }
    if (SplitOnce(t, " - ", &l, &r)) {
      if (!both()) return false;
      *out = a - b;
      return true;
    }
    if (absl::StrContains(t, "-") && t[0] != '-') {
      SplitOnce(t, "-", &l, &r);
      if (Trim(l).empty() || !both()) return false;
      *out = a - b;
      return true;
    }
    if (SplitOnce(t, " * ", &l, &r) || SplitOnce(t, "*", &l, &r)) {
      if (!both()) return false;
      *out = a * b;
      return true;
    }
    return ParseInt(t, out);
  }

  absl::StatusOr<json> FunctionCall(absl::string_view e) const {
    absl::string_view t = Trim(e);
    // ^([a-zA-Z_][a-zA-Z0-9_]*)\s*\((.*)\)$  (`.` does not cross newlines)
    size_t i = 1;
    while (i < t.size() && IsIdentChar(t[i])) ++i;
    const std::string name(t.substr(0, i));
    while (i < t.size() && std::isspace(static_cast<unsigned char>(t[i]))) ++i;
    if (i >= t.size() || t[i] != '(' || t.back() != ')') return json(std::string(e));
    absl::string_view args_text = t.substr(i + 1, t.size() - i - 2);
    if (args_text.find('\n') != absl::string_view::npos) return json(std::string(e));
    std::vector<json> args;
    for (absl::string_view raw : absl::StrSplit(args_text, ',')) {
      args.push_back(Argument(Trim(raw)));
    }
    return Call(name, args);
  }

  json Argument(absl::string_view arg) const {
    if (absl::StartsWith(arg, "inputs.")) return InputValue(std::string(arg.substr(7)));
    if (absl::StartsWith(arg, "steps.")) return StepLookup(arg.substr(6));
    if (absl::StartsWith(arg, "global_vars.")) return GlobalVar(arg.substr(12));
    if (absl::StartsWith(arg, "state.")) return NestedVariable(arg.substr(6));
    // ^\d+(\.\d+)?$
    {
      size_t i = 0;
      while (i < arg.size() && std::isdigit(static_cast<unsigned char>(arg[i]))) ++i;
      bool number = i > 0;
      bool dot = false;
      if (number && i < arg.size() && arg[i] == '.') {
        size_t j = i + 1;
        while (j < arg.size() && std::isdigit(static_cast<unsigned char>(arg[j]))) ++j;
        number = j > i + 1 && j == arg.size();
        dot = true;
      } else {
        number = number && i == arg.size();
      }
      if (number) {
        double d = 0;
        std::from_chars(arg.data(), arg.data() + arg.size(), d);
        if (dot) return d;
        return static_cast<int64_t>(std::trunc(d));
      }
    }
    bool ident = !arg.empty() && IsIdentStart(arg[0]);
    for (char c : arg) ident = ident && IsIdentChar(c);
    if (ident) {
      json v = GetVariable(*context_.state, std::string(arg));
      if (!(v.is_null() || (v.is_boolean() && !v.get<bool>()))) return v;
    }
    return std::string(arg);
  }

  static json EnsureNumber(const json& v) {
    if (v.is_number()) return v;
    if (v.is_string()) {
      const std::string& s = v.get_ref<const std::string&>();
      double d = 0;
      const char* begin = s.data();
      const char* end = s.data() + s.size();
      absl::string_view body = s;
      if (!body.empty() && body[0] == '+') begin += 1;
      auto [ptr, ec] = std::from_chars(begin, end, d);
      // Float.parse requires a digit before the dot; close enough for these helpers.
      if (ec == std::errc() && ptr == end && !s.empty() && std::isfinite(d)) {
        if (absl::StrContains(s, ".")) return d;
        return static_cast<int64_t>(std::trunc(d));
      }
    }
    return 0;
  }

  static json Arith(const json& a, const json& b, char op) {
    if (a.is_number_integer() && b.is_number_integer()) {
      const int64_t x = a.get<int64_t>(), y = b.get<int64_t>();
      if (op == '+') return x + y;
      if (op == '-') return x - y;
      return x * y;
    }
    const double x = a.get<double>(), y = b.get<double>();
    if (op == '+') return x + y;
    if (op == '-') return x - y;
    return x * y;
  }

  absl::StatusOr<json> Call(const std::string& name, const std::vector<json>& args) const {
    const size_t n = args.size();
    if ((name == "multiply" || name == "add" || name == "subtract") && n == 2) {
      return Arith(EnsureNumber(args[0]), EnsureNumber(args[1]),
                   name == "multiply" ? '*'
                   : name == "add"    ? '+'
                                      : '-');
    }
    if (name == "divide" && n == 2) {
      const json b = EnsureNumber(args[1]);
      if (b.get<double>() == 0) return json(0);
      return json(EnsureNumber(args[0]).get<double>() / b.get<double>());
    }
    if ((name == "max" || name == "min") && n >= 1) {
      json best = EnsureNumber(args[0]);
      for (size_t i = 1; i < n; ++i) {
        json v = EnsureNumber(args[i]);
        if (name == "max" ? v.get<double>() > best.get<double>()
                          : v.get<double>() < best.get<double>()) {
          best = v;
        }
      }
      return best;
    }
    if ((name == "round" || name == "floor" || name == "ceil") && n == 1) {
      json v = EnsureNumber(args[0]);
      if (v.is_number_integer()) return v;
      const double d = v.get<double>();
      const double r = name == "round"   ? std::round(d)
                       : name == "floor" ? std::floor(d)
                                         : std::ceil(d);
      return json(static_cast<int64_t>(r));
    }
    std::vector<std::string> texts;
    for (const json& a : args) {
      auto text = ElixirToString(a);
      if (!text.ok()) return text.status();
      texts.push_back(*text);
    }
    return json(absl::StrCat(name, "(", absl::StrJoin(texts, ", "), ")"));
  }

  const TemplateContext& context_;
  const bool with_context_;
};

struct Match {
  size_t begin;
  size_t end;
  absl::string_view expression;
};

// Non-overlapping matches of \{\{([^}]+)\}\}, left to right.
std::vector<Match> FindTemplates(absl::string_view text) {
  std::vector<Match> out;
  size_t i = 0;
  while (i + 1 < text.size()) {
    if (text[i] == '{' && text[i + 1] == '{') {
      size_t j = i + 2;
      while (j < text.size() && text[j] != '}') ++j;
      if (j > i + 2 && j + 1 < text.size() && text[j + 1] == '}') {
        out.push_back(Match{i, j + 2, text.substr(i + 2, j - i - 2)});
        i = j + 2;
        continue;
      }
    }
    ++i;
  }
  return out;
}

absl::StatusOr<std::string> ReplaceAll(absl::string_view text, const Evaluator& evaluator) {
  std::vector<Match> matches = FindTemplates(text);
  if (matches.empty()) return std::string(text);
  std::string out;
  size_t last = 0;
  for (const Match& m : matches) {
    out.append(text.data() + last, m.begin - last);
    auto value = evaluator.Evaluate(Trim(m.expression));
    if (!value.ok()) return value.status();
    auto rendered = ElixirToString(*value);
    if (!rendered.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("template {{", m.expression, "}}: ", rendered.status().message()));
    }
    out.append(*rendered);
    last = m.end;
  }
  out.append(text.data() + last, text.size() - last);
  return out;
}

// The expression when `text` (trimmed) is exactly one template whose body has no '}'.
std::optional<absl::string_view> WholeTemplate(absl::string_view text, bool any_body) {
  absl::string_view t = Trim(text);
  if (t.size() < 5 || !absl::StartsWith(t, "{{") || !absl::EndsWith(t, "}}")) return std::nullopt;
  absl::string_view body = t.substr(2, t.size() - 4);
  if (body.empty()) return std::nullopt;
  if (!any_body && body.find('}') != absl::string_view::npos) return std::nullopt;
  if (any_body && body.find('\n') != absl::string_view::npos) return std::nullopt;
  return body;
}

}  // namespace

bool IsTemplateOnly(std::string_view text_in) {
  const absl::string_view text = Sv(text_in);
  std::vector<Match> matches = FindTemplates(text);
  if (matches.empty()) return false;
  size_t last = 0;
  for (const Match& m : matches) {
    if (!Trim(text.substr(last, m.begin - last)).empty()) return false;
    last = m.end;
  }
  return Trim(text.substr(last)).empty();
}

json GetVariable(const VariableState& state, const std::string& name) {
  for (const json* scope : {&state.loop, &state.session, &state.global}) {
    auto it = scope->find(name);
    if (it != scope->end()) return *it;
  }
  return nullptr;
}

absl::StatusOr<json> InterpolateString(std::string_view text_in, const TemplateContext& context) {
  const absl::string_view text = Sv(text_in);
  static const VariableState kEmptyState;
  TemplateContext ctx = context;
  if (ctx.state == nullptr) ctx.state = &kEmptyState;
  Evaluator evaluator(ctx, /*with_context=*/true);
  if (ctx.inputs != nullptr) {
    if (auto body = WholeTemplate(text, /*any_body=*/false)) {
      return evaluator.Evaluate(Trim(*body));
    }
  }
  auto out = ReplaceAll(text, evaluator);
  if (!out.ok()) return out.status();
  return json(std::move(*out));
}

absl::StatusOr<json> InterpolateValue(const json& value, const TemplateContext& context) {
  if (value.is_string()) return InterpolateString(value.get_ref<const std::string&>(), context);
  if (value.is_array()) {
    json out = json::array();
    for (const auto& item : value) {
      auto v = InterpolateValue(item, context);
      if (!v.ok()) return v.status();
      out.push_back(std::move(*v));
    }
    return out;
  }
  if (value.is_object()) {
    json out = json::object();
    for (auto it = value.begin(); it != value.end(); ++it) {
      auto v = InterpolateValue(it.value(), context);
      if (!v.ok()) return v.status();
      out[it.key()] = std::move(*v);
    }
    return out;
  }
  return value;
}

absl::StatusOr<std::string> InterpolateToText(std::string_view text_in,
                                              const TemplateContext& context) {
  const absl::string_view text = Sv(text_in);
  auto value = InterpolateString(StdSv(text), context);
  if (!value.ok()) return value.status();
  auto rendered = ElixirToString(*value);
  if (!rendered.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("template in \"", text.substr(0, 80), "\": ", rendered.status().message()));
  }
  return rendered;
}

absl::StatusOr<json> ResolveVariableValue(const json& value, const VariableState& state) {
  if (!value.is_string()) return value;
  TemplateContext ctx;
  ctx.state = &state;
  Evaluator evaluator(ctx, /*with_context=*/false);
  const std::string& text = value.get_ref<const std::string&>();
  // ^\{\{(.+)\}\}$ on the trimmed value
  if (auto body = WholeTemplate(text, /*any_body=*/true)) return evaluator.Evaluate(Trim(*body));
  auto out = ReplaceAll(text, evaluator);
  if (!out.ok()) return out.status();
  return json(std::move(*out));
}

}  // namespace elexirion::pipeline
