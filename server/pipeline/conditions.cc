#include "server/pipeline/conditions.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "re2/re2.h"
#include "server/pipeline/elixir_format.h"
#include "server/pipeline/strings.h"

namespace elexirion::pipeline {
namespace {

using json = nlohmann::json;

#define RETURN_STATUS(expr)            \
  do {                                 \
    absl::Status status_ = (expr);     \
    if (!status_.ok()) return status_; \
  } while (false)

// A condition value: JSON, or Elixir's :type_error atom from failed arithmetic.
struct Val {
  json v;
  bool type_error = false;
};

Val V(json v) { return Val{std::move(v), false}; }
Val TypeError() { return Val{nullptr, true}; }

bool Truthy(const Val& x) { return x.type_error || ElixirTruthy(x.v); }

absl::string_view Trim(absl::string_view s) { return absl::StripAsciiWhitespace(s); }
bool IsWord(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
bool IsSpace(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

bool ContainsAny(absl::string_view s, std::initializer_list<absl::string_view> needles) {
  for (absl::string_view n : needles) {
    if (absl::StrContains(s, n)) return true;
  }
  return false;
}

struct Call {
  size_t begin;
  size_t end;
  std::string name;
  std::string args;
};

// Leftmost matches of (\w+)\s*\(([^)]*)\).
std::vector<Call> FindCalls(absl::string_view s) {
  std::vector<Call> out;
  size_t i = 0;
  while (i < s.size()) {
    if (!IsWord(s[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && IsWord(s[j])) ++j;
    size_t k = j;
    while (k < s.size() && IsSpace(s[k])) ++k;
    if (k < s.size() && s[k] == '(') {
      const size_t close = s.find(')', k + 1);
      if (close != absl::string_view::npos) {
        out.push_back(Call{i, close + 1, std::string(s.substr(i, j - i)),
                           std::string(s.substr(k + 1, close - k - 1))});
        i = close + 1;
        continue;
      }
    }
    i = j;
  }
  return out;
}

bool HasCall(absl::string_view s) { return !FindCalls(s).empty(); }

// ^(\w+)\s*\(([^)]*)\)$
std::optional<Call> WholeCall(absl::string_view s) {
  std::vector<Call> calls = FindCalls(s);
  if (calls.size() == 1 && calls[0].begin == 0 && calls[0].end == s.size()) return calls[0];
  return std::nullopt;
}

bool IsIntLiteral(absl::string_view s) {  // ^-?\d+$
  if (!s.empty() && s[0] == '-') s.remove_prefix(1);
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool IsFloatLiteral(absl::string_view s) {  // ^-?\d+\.\d+$
  if (!s.empty() && s[0] == '-') s.remove_prefix(1);
  const size_t dot = s.find('.');
  if (dot == absl::string_view::npos) return false;
  return IsIntLiteral(s.substr(0, dot)) && s.substr(0, dot).find('-') == absl::string_view::npos &&
         IsIntLiteral(s.substr(dot + 1)) && s.substr(dot + 1).find('-') == absl::string_view::npos;
}

json ParseNumber(absl::string_view s, bool is_float) {
  double d = 0;
  std::from_chars(s.data(), s.data() + s.size(), d);
  if (is_float) return d;
  int64_t i = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), i);
  if (ec == std::errc() && ptr == s.data() + s.size()) return i;
  return d;
}

size_t Utf8Length(const std::string& s) {
  size_t n = 0;
  for (char c : s) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}

json Length(const json& v) {
  if (v.is_array() || v.is_object()) return static_cast<int64_t>(v.size());
  if (v.is_string()) return static_cast<int64_t>(Utf8Length(v.get_ref<const std::string&>()));
  return 0;
}

bool CompareValues(const Val& l, const Val& r, absl::string_view op) {
  if (l.type_error || r.type_error) return false;
  if (l.v.is_number() && r.v.is_number()) {
    const double a = l.v.get<double>(), b = r.v.get<double>();
    if (l.v.is_number_integer() && r.v.is_number_integer()) {
      const int64_t x = l.v.get<int64_t>(), y = r.v.get<int64_t>();
      if (op == ">") return x > y;
      if (op == "<") return x < y;
      if (op == ">=") return x >= y;
      return x <= y;
    }
    if (op == ">") return a > b;
    if (op == "<") return a < b;
    if (op == ">=") return a >= b;
    return a <= b;
  }
  if (l.v.is_string() && r.v.is_string()) {
    const std::string& a = l.v.get_ref<const std::string&>();
    const std::string& b = r.v.get_ref<const std::string&>();
    if (op == ">") return a > b;
    if (op == "<") return a < b;
    if (op == ">=") return a >= b;
    return a <= b;
  }
  return false;
}

bool Equal(const Val& l, const Val& r) {
  if (l.type_error || r.type_error) return l.type_error && r.type_error;
  return l.v == r.v;
}

bool RegexMatch(const json& value, const json& pattern) {
  if (!value.is_string() || !pattern.is_string()) return false;
  RE2::Options options;
  options.set_log_errors(false);
  RE2 re(pattern.get_ref<const std::string&>(), options);
  if (!re.ok()) return false;
  return RE2::PartialMatch(value.get_ref<const std::string&>(), re);
}

bool ContainsValue(const json& haystack, const json& needle) {
  if (haystack.is_string() && needle.is_string()) {
    return absl::StrContains(haystack.get_ref<const std::string&>(),
                             needle.get_ref<const std::string&>());
  }
  if (haystack.is_array()) {
    for (const auto& item : haystack) {
      if (item == needle) return true;
    }
  }
  return false;
}

absl::StatusOr<std::string> ValToString(const Val& x) {
  if (x.type_error) return std::string("type_error");
  return ElixirToString(x.v);
}

// Evaluates one condition against a results map. Immutable; safe to share across threads.
class Engine {
 public:
  explicit Engine(const json& results, int depth = 0) : results_(results), depth_(depth) {}

  absl::StatusOr<bool> Evaluate(const json& condition) const {
    if (depth_ > 32) return absl::InvalidArgumentError("condition nested too deeply");
    if (condition.is_null()) return true;
    if (condition.is_boolean()) return condition.get<bool>();
    if (condition.is_string()) return Simple(condition.get_ref<const std::string&>());
    if (condition.is_array()) {
      for (const auto& c : condition) {
        auto r = Nested().Evaluate(c);
        if (!r.ok() || !*r) return r;
      }
      return true;
    }
    if (condition.is_object()) {
      auto list = [&](const char* key, bool want_all) -> absl::StatusOr<bool> {
        const json& items = condition.at(key);
        if (!items.is_array()) {
          return absl::InvalidArgumentError(absl::StrCat("condition `", key, "` needs a list"));
        }
        for (const auto& c : items) {
          auto r = Nested().Evaluate(c);
          if (!r.ok()) return r;
          if (want_all && !*r) return false;
          if (!want_all && *r) return true;
        }
        return want_all;
      };
      if (condition.contains("and")) return list("and", true);
      if (condition.contains("or")) return list("or", false);
      if (condition.contains("not")) {
        auto r = Nested().Evaluate(condition.at("not"));
        if (!r.ok()) return r;
        return !*r;
      }
      return absl::InvalidArgumentError("a condition map must have an `and`, `or` or `not` key");
    }
    return absl::InvalidArgumentError("a condition must be a string, a list or a map");
  }

 private:
  Engine Nested() const { return Engine(results_, depth_ + 1); }

  absl::StatusOr<bool> Simple(absl::string_view e) const {
    if (HasCall(e)) return WithFunctions(e);
    const bool math = ContainsAny(e, {"+", "-", "*", "/", "%"});
    if (math &&
        ContainsAny(e, {">", "<", "==", "!=", ">=", "<=", "contains", "matches", "between"})) {
      return MathComparison(e);
    }
    if (ContainsAny(e, {">", "<", "==", "!=", "contains", "matches", "between"})) {
      return Comparison(e);
    }
    if (math) {
      auto v = MathExpression(e);
      if (!v.ok()) return v.status();
      return Truthy(*v);
    }
    return ElixirTruthy(Field(e));
  }

  absl::StatusOr<bool> WithFunctions(absl::string_view e) const {
    e = Trim(e);
    if (!WholeCall(e) && ContainsAny(e, {">", "<", "==", "!=", ">=", "<=", "between"})) {
      return MathComparison(e);
    }
    auto v = MathExpression(e);
    if (!v.ok()) return v.status();
    return Truthy(*v);
  }

  absl::StatusOr<bool> MathComparison(absl::string_view e) const {
    e = Trim(e);
    static constexpr absl::string_view kOps[] = {
        " between ", " >= ", " <= ", " == ", " != ", " > ", " < ", " contains ", " matches "};
    for (absl::string_view op : kOps) {
      const size_t pos = e.find(op);
      if (pos == absl::string_view::npos) continue;
      auto left = ValueExpression(Trim(e.substr(0, pos)));
      if (!left.ok()) return left.status();
      absl::string_view right_text = Trim(e.substr(pos + op.size()));
      if (op == " between ") {
        const size_t and_pos = right_text.find(" and ");
        if (and_pos == absl::string_view::npos) return false;
        auto lo = ValueExpression(Trim(right_text.substr(0, and_pos)));
        if (!lo.ok()) return lo.status();
        auto hi = ValueExpression(Trim(right_text.substr(and_pos + 5)));
        if (!hi.ok()) return hi.status();
        auto r = Function("between", {*left, *lo, *hi});
        if (!r.ok()) return r.status();
        return Truthy(*r);
      }
      auto right = ValueExpression(right_text);
      if (!right.ok()) return right.status();
      return PerformComparison(*left, *right, Trim(op));
    }
    auto v = MathExpression(e);
    if (!v.ok()) return v.status();
    return Truthy(*v);
  }

  absl::StatusOr<bool> PerformComparison(const Val& l, const Val& r, absl::string_view op) const {
    if (op == "==") return Equal(l, r);
    if (op == "!=") return !Equal(l, r);
    if (op == "contains" || op == "matches") {
      auto v = Function(std::string(op), {l, r});
      if (!v.ok()) return v.status();
      return Truthy(*v);
    }
    return CompareValues(l, r, op);
  }

  absl::StatusOr<Val> ValueExpression(absl::string_view e) const {
    e = Trim(e);
    if (HasCall(e)) return FunctionCalls(e);
    const bool negative_literal = IsIntLiteral(e) || IsFloatLiteral(e);
    if (ContainsAny(e, {"+", "*", "/", "%"}) || (absl::StrContains(e, "-") && !negative_literal)) {
      return MathPrecedence(e);
    }
    return Resolve(V(std::string(e)));
  }

  absl::StatusOr<bool> Comparison(absl::string_view e) const {
    e = Trim(e);
    auto split = [&](absl::string_view op, Val* l, Val* r) -> bool {
      const size_t pos = e.find(op);
      if (pos == absl::string_view::npos) return false;
      *l = ResolveText(Trim(e.substr(0, pos)));
      *r = ResolveText(Trim(e.substr(pos + op.size())));
      return true;
    };
    Val l, r;
    if (absl::StrContains(e, " between ")) {
      const size_t pos = e.find(" between ");
      l = ResolveText(Trim(e.substr(0, pos)));
      absl::string_view right = Trim(e.substr(pos + 9));
      const size_t and_pos = right.find(" and ");
      if (and_pos == absl::string_view::npos) return false;
      Val lo = ResolveText(Trim(right.substr(0, and_pos)));
      Val hi = ResolveText(Trim(right.substr(and_pos + 5)));
      auto v = Function("between", {l, lo, hi});
      if (!v.ok()) return v.status();
      return Truthy(*v);
    }
    if (split(" contains ", &l, &r)) return !l.type_error && ContainsValue(l.v, r.v);
    if (split(" matches ", &l, &r)) return RegexMatch(l.v, r.v);
    if (split(" >= ", &l, &r)) return CompareValues(l, r, ">=");
    if (split(" <= ", &l, &r)) return CompareValues(l, r, "<=");
    if (split(" == ", &l, &r)) return Equal(l, r);
    if (split(" != ", &l, &r)) return !Equal(l, r);
    if (split(" > ", &l, &r)) return CompareValues(l, r, ">");
    if (split(" < ", &l, &r)) return CompareValues(l, r, "<");
    return ElixirTruthy(Field(e));
  }

  absl::StatusOr<Val> MathExpression(absl::string_view e) const {
    e = Trim(e);
    if (HasCall(e)) return FunctionCalls(e);
    return MathPrecedence(e);
  }

  absl::StatusOr<Val> FunctionCalls(absl::string_view e) const {
    absl::string_view t = Trim(e);
    if (auto call = WholeCall(t)) return Function(call->name, ParseArgs(call->args));
    std::string replaced;
    size_t last = 0;
    for (const Call& call : FindCalls(e)) {
      replaced.append(std::string(e.substr(last, call.begin - last)));
      auto v = Function(call.name, ParseArgs(call.args));
      if (!v.ok()) return v.status();
      auto text = ValToString(*v);
      if (!text.ok()) return text.status();
      replaced.append(*text);
      last = call.end;
    }
    replaced.append(std::string(e.substr(last)));
    return MathPrecedence(replaced);
  }

  static std::vector<Val> ParseArgs(absl::string_view args) {
    std::vector<Val> out;
    if (args.empty()) return out;
    for (absl::string_view a : absl::StrSplit(args, ',')) out.push_back(V(std::string(Trim(a))));
    return out;
  }

  absl::StatusOr<Val> MathPrecedence(absl::string_view e) const {
    if (depth_ > 200) return absl::InvalidArgumentError("expression nested too deeply");
    e = Trim(e);
    for (const auto& ops : {std::vector<char>{'+', '-'}, std::vector<char>{'*', '/', '%'}}) {
      size_t best = absl::string_view::npos;
      char best_op = 0;
      for (char op : ops) {
        const size_t pos = e.rfind(op);
        if (pos != absl::string_view::npos && (best == absl::string_view::npos || pos > best)) {
          best = pos;
          best_op = op;
        }
      }
      if (best == absl::string_view::npos) continue;
      Engine inner(results_, depth_ + 1);
      auto l = inner.MathPrecedence(e.substr(0, best));
      if (!l.ok()) return l.status();
      auto r = inner.MathPrecedence(e.substr(best + 1));
      if (!r.ok()) return r.status();
      return MathOp(*l, *r, best_op);
    }
    return ResolveText(e);
  }

  static Val ToNumber(const Val& x) {
    if (x.type_error) return x;
    if (x.v.is_number()) return x;
    if (x.v.is_string()) {
      const std::string& s = x.v.get_ref<const std::string&>();
      double d = 0;
      auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
      if (!s.empty() && ec == std::errc() && ptr == s.data() + s.size() && std::isfinite(d)) {
        return V(d);
      }
    }
    return TypeError();
  }

  static Val MathOp(const Val& l0, const Val& r0, char op) {
    const Val l = ToNumber(l0), r = ToNumber(r0);
    if (l.type_error || r.type_error) return TypeError();
    const bool ints = l.v.is_number_integer() && r.v.is_number_integer();
    const double a = l.v.get<double>(), b = r.v.get<double>();
    switch (op) {
      case '+':
        return ints ? V(l.v.get<int64_t>() + r.v.get<int64_t>()) : V(a + b);
      case '-':
        return ints ? V(l.v.get<int64_t>() - r.v.get<int64_t>()) : V(a - b);
      case '*':
        return ints ? V(l.v.get<int64_t>() * r.v.get<int64_t>()) : V(a * b);
      case '/':
        return b != 0 ? V(a / b) : V(0);
      case '%': {
        const int64_t x = static_cast<int64_t>(std::trunc(a));
        const int64_t y = static_cast<int64_t>(std::trunc(b));
        return y != 0 ? V(x % y) : V(0);
      }
    }
    return V(0);
  }

  // resolve_value_private for text.
  Val ResolveText(absl::string_view raw) const {
    absl::string_view s = Trim(raw);
    auto quoted = [&](char q) { return !s.empty() && s.front() == q && s.back() == q; };
    if (quoted('\'') || quoted('"')) {
      return V(s.size() >= 2 ? std::string(s.substr(1, s.size() - 2)) : std::string());
    }
    if (IsIntLiteral(s)) return V(ParseNumber(s, false));
    if (IsFloatLiteral(s)) return V(ParseNumber(s, true));
    if (s == "true") return V(true);
    if (s == "false") return V(false);
    if (s == "null") return V(nullptr);
    if (absl::StrContains(s, ".length")) {
      return V(Length(Field(absl::StrReplaceAll(s, {{".length", ""}}))));
    }
    return V(Field(s));
  }

  Val Resolve(const Val& x) const {
    if (x.type_error || !x.v.is_string()) return x;
    return ResolveText(x.v.get_ref<const std::string&>());
  }

  json Field(absl::string_view path) const {
    const json* cur = &results_;
    for (absl::string_view part : absl::StrSplit(path, '.')) {
      if (!cur->is_object()) return nullptr;
      auto it = cur->find(std::string(part));
      if (it == cur->end()) return nullptr;
      cur = &*it;
    }
    return *cur;
  }

  absl::StatusOr<Val> ItemCondition(const Val& array, const Val& condition, int mode) const {
    // mode 0: any, 1: all, 2: count
    const Val list = Resolve(array);
    if (list.type_error || !list.v.is_array()) return mode == 2 ? V(0) : V(false);
    std::string text = condition.v.is_string() ? condition.v.get<std::string>() : std::string();
    if (text.size() >= 2 && ((text.front() == '\'' && text.back() == '\'') ||
                             (text.front() == '"' && text.back() == '"'))) {
      text = text.substr(1, text.size() - 2);
    }
    int64_t count = 0;
    for (const json& item : list.v) {
      std::string item_condition = text;
      if (absl::StrContains(text, "@")) {
        auto item_text = ElixirToString(item);
        if (!item_text.ok()) return item_text.status();
        item_condition = absl::StrReplaceAll(text, {{"@", *item_text}});
      } else if (item.is_object() && !item.empty()) {
        // \b(field1|field2)\b -> @item.field
        std::string out;
        for (size_t i = 0; i < text.size();) {
          const bool boundary = i == 0 || !IsWord(text[i - 1]);
          bool replaced = false;
          if (boundary) {
            for (auto it = item.begin(); it != item.end(); ++it) {
              const std::string& key = it.key();
              if (!key.empty() && text.compare(i, key.size(), key) == 0 &&
                  (i + key.size() == text.size() || !IsWord(text[i + key.size()]))) {
                out += "@item." + key;
                i += key.size();
                replaced = true;
                break;
              }
            }
          }
          if (!replaced) out.push_back(text[i++]);
        }
        item_condition = std::move(out);
      }
      json item_results = results_;
      if (item.is_object()) item_results["@item"] = item;
      Engine inner(item_results, depth_ + 1);
      auto r = inner.Evaluate(json(item_condition));
      if (!r.ok()) return r.status();
      if (*r) ++count;
      if (mode == 0 && *r) return V(true);
      if (mode == 1 && !*r) return V(false);
    }
    if (mode == 0) return V(false);
    if (mode == 1) return V(true);
    return V(count);
  }

  absl::StatusOr<Val> Function(const std::string& name, const std::vector<Val>& args) const {
    const size_t n = args.size();
    auto arity = [&](size_t want) -> absl::Status {
      if (n == want) return absl::OkStatus();
      return absl::InvalidArgumentError(
          absl::StrCat("condition function ", name, "() takes ", want, " argument(s), got ", n));
    };
    auto R = [&](size_t i) { return Resolve(args[i]); };
    auto number = [](const Val& x) { return !x.type_error && x.v.is_number(); };
    auto text = [](const Val& x) { return !x.type_error && x.v.is_string(); };
    if (name == "contains") {
      RETURN_STATUS(arity(2));
      const Val h = R(0), nd = R(1);
      return V(!h.type_error && !nd.type_error && ContainsValue(h.v, nd.v));
    }
    if (name == "matches") {
      RETURN_STATUS(arity(2));
      return V(RegexMatch(R(0).v, R(1).v));
    }
    if (name == "length") {
      RETURN_STATUS(arity(1));
      return V(Length(R(0).v));
    }
    if (name == "startsWith" || name == "endsWith") {
      RETURN_STATUS(arity(2));
      const Val s = R(0), p = R(1);
      if (!text(s) || !text(p)) return V(false);
      const std::string& a = s.v.get_ref<const std::string&>();
      const std::string& b = p.v.get_ref<const std::string&>();
      return V(name == "startsWith" ? absl::StartsWith(a, b) : absl::EndsWith(a, b));
    }
    if (name == "toLowerCase" || name == "toUpperCase" || name == "trim") {
      RETURN_STATUS(arity(1));
      Val s = R(0);
      if (!text(s)) return s;
      std::string v = s.v.get<std::string>();
      if (name == "toLowerCase") return V(absl::AsciiStrToLower(v));
      if (name == "toUpperCase") return V(absl::AsciiStrToUpper(v));
      return V(std::string(Trim(v)));
    }
    if (name == "any" || name == "all" || name == "count") {
      const int mode = name == "any" ? 0 : name == "all" ? 1 : 2;
      if (n == 2) return ItemCondition(args[0], args[1], mode);
      RETURN_STATUS(arity(1));
      const Val list = R(0);
      if (list.type_error || !list.v.is_array()) return mode == 2 ? V(0) : V(false);
      if (mode == 2) return V(static_cast<int64_t>(list.v.size()));
      for (const json& item : list.v) {
        const bool t = ElixirTruthy(item);
        if (mode == 0 && t) return V(true);
        if (mode == 1 && !t) return V(false);
      }
      return V(mode == 1);
    }
    if (name == "sum" || name == "average" || name == "min" || name == "max") {
      RETURN_STATUS(arity(1));
      const Val list = R(0);
      if (list.type_error || !list.v.is_array()) {
        return (name == "min" || name == "max") ? V(nullptr) : V(0);
      }
      std::vector<json> numbers;
      for (const json& item : list.v) {
        if (item.is_number()) numbers.push_back(item);
      }
      if (name == "min" || name == "max") {
        if (numbers.empty()) return V(nullptr);
        json best = numbers[0];
        for (const json& x : numbers) {
          if (name == "min" ? x.get<double>() < best.get<double>()
                            : x.get<double>() > best.get<double>()) {
            best = x;
          }
        }
        return V(best);
      }
      bool all_int = true;
      int64_t isum = 0;
      double dsum = 0;
      for (const json& x : numbers) {
        all_int = all_int && x.is_number_integer();
        if (x.is_number_integer()) isum += x.get<int64_t>();
        dsum += x.get<double>();
      }
      if (name == "sum") return all_int ? V(isum) : V(dsum);
      if (numbers.empty()) return V(0);
      return V(dsum / static_cast<double>(numbers.size()));
    }
    if (name == "isEmpty") {
      RETURN_STATUS(arity(1));
      const Val v = R(0);
      if (v.type_error) return V(false);
      if (v.v.is_array() || v.v.is_object()) return V(v.v.empty());
      if (v.v.is_string()) return V(v.v.get_ref<const std::string&>().empty());
      return V(v.v.is_null());
    }
    if (name == "days" || name == "hours" || name == "minutes") {
      RETURN_STATUS(arity(1));
      const Val v = R(0);
      if (!number(v)) return V(0);
      const int64_t factor = name == "days" ? 86400 : name == "hours" ? 3600 : 60;
      if (v.v.is_number_integer()) return V(v.v.get<int64_t>() * factor);
      return V(v.v.get<double>() * static_cast<double>(factor));
    }
    if (name == "seconds") {
      RETURN_STATUS(arity(1));
      return R(0);
    }
    if (name == "abs" || name == "round" || name == "floor" || name == "ceil" || name == "sqrt") {
      RETURN_STATUS(arity(1));
      const Val v = R(0);
      if (!number(v)) return V(0);
      if (name == "sqrt") {
        const double d = v.v.get<double>();
        return d >= 0 ? V(std::sqrt(d)) : V(0);
      }
      if (v.v.is_number_integer()) {
        const int64_t i = v.v.get<int64_t>();
        return name == "abs" ? V(i < 0 ? -i : i) : V(i);
      }
      const double d = v.v.get<double>();
      if (name == "abs") return V(std::fabs(d));
      const double r = name == "round"   ? std::round(d)
                       : name == "floor" ? std::floor(d)
                                         : std::ceil(d);
      return V(static_cast<int64_t>(r));
    }
    if (name == "pow") {
      RETURN_STATUS(arity(2));
      const Val b = R(0), x = R(1);
      if (!number(b) || !number(x)) return V(0);
      return V(std::pow(b.v.get<double>(), x.v.get<double>()));
    }
    if (name == "between") {
      RETURN_STATUS(arity(3));
      const Val v = R(0), lo = R(1), hi = R(2);
      if (!number(v) || !number(lo) || !number(hi)) return V(false);
      return V(v.v.get<double>() >= lo.v.get<double>() && v.v.get<double>() <= hi.v.get<double>());
    }
    if (name == "now") {
      return absl::InvalidArgumentError("condition function now() is not supported");
    }
    return absl::InvalidArgumentError(absl::StrCat("unknown condition function: ", name));
  }

  const json& results_;
  const int depth_;
};

}  // namespace

absl::StatusOr<bool> EvaluateCondition(const json& condition, const json& results) {
  return Engine(results).Evaluate(condition);
}

}  // namespace elexirion::pipeline
