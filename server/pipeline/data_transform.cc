#include "server/pipeline/data_transform.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "server/pipeline/elixir_format.h"

namespace elexirion::pipeline {
namespace {

using json = nlohmann::json;

// Erlang term order: number < atom (false < nil < true, alphabetical) < map < list < binary.
int TypeRank(const json& v) {
  if (v.is_number()) return 0;
  if (v.is_null() || v.is_boolean()) return 1;
  if (v.is_object()) return 2;
  if (v.is_array()) return 3;
  return 4;
}

int AtomRank(const json& v) {
  if (v.is_boolean()) return v.get<bool>() ? 2 : 0;
  return 1;  // nil
}

int Compare(const json& a, const json& b) {
  const int ra = TypeRank(a), rb = TypeRank(b);
  if (ra != rb) return ra < rb ? -1 : 1;
  switch (ra) {
    case 0: {
      const double x = a.get<double>(), y = b.get<double>();
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    case 1:
      return AtomRank(a) - AtomRank(b);
    case 4: {
      const std::string& x = a.get_ref<const std::string&>();
      const std::string& y = b.get_ref<const std::string&>();
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    default:
      // Maps and lists: their JSON text gives a total, deterministic order.
      return a.dump() < b.dump() ? -1 : (a.dump() > b.dump() ? 1 : 0);
  }
}

// Elixir's == (1 == 1.0 holds).
bool LooseEqual(const json& a, const json& b) {
  if (a.is_number() && b.is_number()) return a.get<double>() == b.get<double>();
  return a == b;
}

json ParseLiteral(absl::string_view raw) {
  const absl::string_view v = absl::StripAsciiWhitespace(raw);
  if (v.size() >= 2 &&
      ((v.front() == '\'' && v.back() == '\'') || (v.front() == '"' && v.back() == '"'))) {
    return std::string(v.substr(1, v.size() - 2));
  }
  const bool digits = !v.empty() && std::all_of(v.begin(), v.end(), absl::ascii_isdigit);
  int64_t i = 0;
  if (digits && absl::SimpleAtoi(v, &i)) return i;
  const size_t dot = v.find('.');
  if (dot != absl::string_view::npos && dot > 0 && dot + 1 < v.size()) {
    const absl::string_view a = v.substr(0, dot), b = v.substr(dot + 1);
    if (std::all_of(a.begin(), a.end(), absl::ascii_isdigit) &&
        std::all_of(b.begin(), b.end(), absl::ascii_isdigit)) {
      double d = 0;
      if (absl::SimpleAtod(v, &d)) return d;
    }
  }
  if (v == "true") return true;
  if (v == "false") return false;
  if (v == "null" || v == "nil") return nullptr;
  return std::string(v);
}

json LeftValue(absl::string_view expr, const json& value, const json& item) {
  if (expr == "value") return value;
  const json field = DataField(item, std::string(expr));
  if (absl::StrContains(expr, ".")) return field;
  return field.is_null() ? value : field;  // `||`: DataField already made false nil
}

// Elixir's `!!`: only nil and false are false.
bool Truthy(const json& v) { return !(v.is_null() || (v.is_boolean() && !v.get<bool>())); }

bool Holds(const std::string& condition, const json& value, const json& item) {
  for (const char* op : {"==", "!=", ">=", "<=", ">", "<", "contains"}) {
    const size_t at = condition.find(op);
    if (at == std::string::npos) continue;
    const json left = LeftValue(
        absl::StripAsciiWhitespace(absl::string_view(condition).substr(0, at)), value, item);
    const json right = ParseLiteral(absl::string_view(condition).substr(at + strlen(op)));
    const std::string o = op;
    if (o == "==") return LooseEqual(left, right);
    if (o == "!=") return !LooseEqual(left, right);
    if (o == "contains") {
      if (left.is_array()) {
        for (const json& x : left) {
          if (LooseEqual(x, right)) return true;
        }
        return false;
      }
      return left.is_string() && right.is_string() &&
             absl::StrContains(left.get<std::string>(), right.get<std::string>());
    }
    const int c = Compare(left, right);
    if (o == ">=") return c >= 0;
    if (o == "<=") return c <= 0;
    if (o == ">") return c > 0;
    return c < 0;
  }
  return Truthy(LeftValue(absl::StripAsciiWhitespace(condition), value, item));
}

std::string Str(const json& op, const char* key, const std::string& fallback = "") {
  auto it = op.find(key);
  return (it != op.end() && it->is_string()) ? it->get<std::string>() : fallback;
}

void SetField(json* item, const std::string& path, json value) {
  if (!item->is_object()) return;
  const std::vector<std::string> keys = absl::StrSplit(path, '.');
  json* at = item;
  for (size_t i = 0; i + 1 < keys.size(); ++i) {
    json& next = (*at)[keys[i]];
    if (next.is_null()) next = json::object();
    if (!next.is_object()) return;
    at = &next;
  }
  (*at)[keys.back()] = std::move(value);
}

absl::StatusOr<std::string> KeyText(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  return ElixirToString(v);
}

absl::StatusOr<json> MapItem(const json& item, const json& op) {
  const std::string field = Str(op, "field");
  auto mapping = op.find("mapping");
  if (mapping != op.end() && mapping->is_object()) {
    if (field.empty()) {
      if (!item.is_object())
        return absl::InvalidArgumentError("cannot merge a mapping into a non-map");
      json out = item;
      for (auto it = mapping->begin(); it != mapping->end(); ++it) out[it.key()] = it.value();
      return out;
    }
    const json current = DataField(item, field);
    auto key = KeyText(current);
    if (!key.ok()) return key.status();
    json out = item;
    auto hit = mapping->find(*key);
    SetField(&out, field, hit != mapping->end() ? *hit : current);
    return out;
  }
  const std::string expression = Str(op, "expression");
  if (!field.empty() && (expression == "uppercase" || expression == "lowercase")) {
    const json current = DataField(item, field);
    if (!current.is_string()) return item;
    json out = item;
    SetField(&out, field,
             expression == "uppercase" ? absl::AsciiStrToUpper(current.get<std::string>())
                                       : absl::AsciiStrToLower(current.get<std::string>()));
    return out;
  }
  return item;
}

json Aggregate(const std::vector<json>& values, const std::string& function) {
  std::vector<json> numbers;
  for (const json& v : values) {
    if (v.is_number()) numbers.push_back(v);
  }
  if (function == "sum" || function == "average") {
    bool all_int = true;
    int64_t isum = 0;
    double dsum = 0;
    for (const json& n : numbers) {
      all_int = all_int && n.is_number_integer();
      if (n.is_number_integer()) isum += n.get<int64_t>();
      dsum += n.get<double>();
    }
    if (function == "sum") return all_int ? json(isum) : json(dsum);
    if (numbers.empty()) return 0;
    return dsum / static_cast<double>(numbers.size());
  }
  if (function == "count") return static_cast<int64_t>(values.size());
  if (function == "max" || function == "min") {
    if (numbers.empty()) return 0;
    json best = numbers[0];
    for (const json& n : numbers) {
      const int c = Compare(n, best);
      if ((function == "max" && c > 0) || (function == "min" && c < 0)) best = n;
    }
    return best;
  }
  if (function == "first") return values.empty() ? json() : values.front();
  if (function == "last") return values.empty() ? json() : values.back();
  if (function == "unique") {
    json out = json::array();
    for (const json& v : values) {
      bool seen = false;
      for (const json& o : out) seen = seen || o == v;
      if (!seen) out.push_back(v);
    }
    return out;
  }
  return json(values);
}

json JoinItem(const json& item, const json& right, const std::string& left_field,
              const std::string& join_key) {
  const json key = DataField(item, left_field.empty() ? join_key : left_field);
  const json* match = nullptr;
  if (right.is_array()) {
    for (const json& r : right) {
      if (DataField(r, join_key) == key) {
        match = &r;
        break;
      }
    }
  } else if (right.is_object() && DataField(right, join_key) == key) {
    match = &right;
  }
  if (match == nullptr || !match->is_object() || !item.is_object()) return item;
  json out = item;
  for (auto it = match->begin(); it != match->end(); ++it) out[it.key()] = it.value();
  return out;
}

absl::StatusOr<json> Apply(const json& data, const json& op, const DataSourceResolver& resolve) {
  const std::string name = Str(op, "operation");
  const std::string field = Str(op, "field");
  if (name == "filter") {
    const std::string condition = Str(op, "condition");
    auto keep = [&](const json& item) {
      return Holds(condition, field.empty() ? item : DataField(item, field), item);
    };
    if (!data.is_array()) return keep(data) ? data : json();
    json out = json::array();
    for (const json& item : data) {
      if (keep(item)) out.push_back(item);
    }
    return out;
  }
  if (name == "map") {
    if (!data.is_array()) return MapItem(data, op);
    json out = json::array();
    for (const json& item : data) {
      auto mapped = MapItem(item, op);
      if (!mapped.ok()) return mapped.status();
      out.push_back(std::move(*mapped));
    }
    return out;
  }
  if (name == "aggregate") {
    const std::string function = Str(op, "function", "sum");
    std::vector<json> values;
    if (data.is_array()) {
      for (const json& item : data) {
        json v = field.empty() ? item : DataField(item, field);
        if (!v.is_null()) values.push_back(std::move(v));
      }
    } else {
      values.push_back(field.empty() ? data : DataField(data, field));
    }
    return Aggregate(values, function);
  }
  if (name == "join") {
    json right = resolve(Str(op, "right_source"));
    if (right.is_null()) right = json::array();
    const std::string left_field = Str(op, "left_field");
    const std::string join_key = Str(op, "join_key");
    if (!data.is_array()) return JoinItem(data, right, left_field, join_key);
    json out = json::array();
    for (const json& item : data) out.push_back(JoinItem(item, right, left_field, join_key));
    return out;
  }
  if (name == "group_by") {
    if (!data.is_array()) return json{{"default", data}};
    json out = json::object();
    for (const json& item : data) {
      auto key = KeyText(DataField(item, field));
      if (!key.ok()) return key.status();
      if (!out.contains(*key)) out[*key] = json::array();
      out[*key].push_back(item);
    }
    return out;
  }
  if (name == "sort") {
    if (!data.is_array()) return data;
    std::vector<json> items(data.begin(), data.end());
    const bool desc = Str(op, "order", "asc") == "desc";
    std::stable_sort(items.begin(), items.end(), [&](const json& a, const json& b) {
      const int c = Compare(DataField(a, field), DataField(b, field));
      return desc ? c > 0 : c < 0;
    });
    return json(items);
  }
  return absl::InvalidArgumentError(absl::StrCat("Unknown operation: ", name));
}

}  // namespace

json DataField(const json& data, const std::string& path) {
  const json* at = &data;
  for (absl::string_view key : absl::StrSplit(path, '.')) {
    if (!at->is_object()) return nullptr;
    auto it = at->find(std::string(key));
    if (it == at->end()) return nullptr;
    at = &*it;
  }
  // pipeline_ex's `Map.get(data, key) || ...` turns false into nil.
  if (at->is_boolean() && !at->get<bool>()) return nullptr;
  return *at;
}

std::string DataTypeName(const json& data) {
  if (data.is_array()) return "list";
  if (data.is_object()) return "map";
  if (data.is_string()) return "string";
  if (data.is_number()) return "number";
  if (data.is_boolean()) return "boolean";
  return "null";
}

absl::StatusOr<json> ApplyDataOperations(const json& data, const json& operations,
                                         const DataSourceResolver& resolve) {
  if (!operations.is_array()) return data;
  json current = data;
  for (size_t i = 0; i < operations.size(); ++i) {
    const json& op = operations[i];
    auto next = Apply(current, op, resolve);
    if (!next.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("operations[", i, "] (", Str(op, "operation"),
                                                     "): ", next.status().message()));
    }
    current = std::move(*next);
  }
  return current;
}

}  // namespace elexirion::pipeline
