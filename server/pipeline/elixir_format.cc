#include "server/pipeline/elixir_format.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/pipeline/strings.h"

namespace elexirion::pipeline {
namespace {

// Erlang io_lib_format:insert_decimal/3 over the shortest digits `digits` (no leading or
// trailing zeros) with value = digits * 10^place.
std::string InsertDecimal(int place, const std::string& digits, double value) {
  const int length = static_cast<int>(digits.size());
  const int exponent = place + length - 1;
  const std::string exponent_text = std::to_string(exponent);
  const int exponent_cost = static_cast<int>(exponent_text.size()) + 2;
  auto insert_exp = [&]() {
    if (length == 1) return absl::StrCat(digits, ".0e", exponent_text);
    return absl::StrCat(digits.substr(0, 1), ".", digits.substr(1), "e", exponent_text);
  };
  if (place < 0) {
    if (exponent >= 0) {
      return absl::StrCat(digits.substr(0, length + place), ".", digits.substr(length + place));
    }
    if (2 - place - length <= exponent_cost) {
      return absl::StrCat("0.", std::string(-place - length, '0'), digits);
    }
    return insert_exp();
  }
  const int dot = length == 1 ? 1 : 0;
  if (place + dot <= exponent_cost && std::fabs(value) < 9007199254740992.0) {
    return absl::StrCat(digits, std::string(place, '0'), ".0");
  }
  return insert_exp();
}

void AppendEscaped(std::string* out, absl::string_view s) {
  out->push_back('"');
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\f':
        out->append("\\f");
        break;
      case '\r':
        out->append("\\r");
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04X", c);
          out->append(buf);
        } else {
          out->push_back(ch);
        }
    }
  }
  out->push_back('"');
}

void AppendNumber(std::string* out, const nlohmann::json& value) {
  if (value.is_number_integer()) {
    out->append(value.dump());
  } else {
    out->append(ElixirFloatToString(value.get<double>()));
  }
}

void Encode(std::string* out, const nlohmann::json& value, bool pretty, int indent) {
  auto newline = [&](int level) {
    if (!pretty) return;
    out->push_back('\n');
    out->append(static_cast<size_t>(level) * 2, ' ');
  };
  switch (value.type()) {
    case nlohmann::json::value_t::null:
      out->append("null");
      return;
    case nlohmann::json::value_t::boolean:
      out->append(value.get<bool>() ? "true" : "false");
      return;
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float:
      AppendNumber(out, value);
      return;
    case nlohmann::json::value_t::string:
      AppendEscaped(out, value.get_ref<const std::string&>());
      return;
    case nlohmann::json::value_t::array: {
      if (value.empty()) {
        out->append("[]");
        return;
      }
      out->push_back('[');
      bool first = true;
      for (const auto& item : value) {
        if (!first) out->push_back(',');
        first = false;
        newline(indent + 1);
        Encode(out, item, pretty, indent + 1);
      }
      newline(indent);
      out->push_back(']');
      return;
    }
    case nlohmann::json::value_t::object: {
      if (value.empty()) {
        out->append("{}");
        return;
      }
      out->push_back('{');
      bool first = true;
      // nlohmann::json objects are std::map: byte-ordered keys, like Erlang small maps.
      for (auto it = value.begin(); it != value.end(); ++it) {
        if (!first) out->push_back(',');
        first = false;
        newline(indent + 1);
        AppendEscaped(out, it.key());
        out->append(pretty ? ": " : ":");
        Encode(out, it.value(), pretty, indent + 1);
      }
      newline(indent);
      out->push_back('}');
      return;
    }
    default:
      out->append("null");
  }
}

void AppendUtf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// List.to_string/1: binaries, code points and nested lists.
absl::Status AppendCharlist(std::string* out, const nlohmann::json& list, int depth) {
  if (depth > 64) return absl::InvalidArgumentError("list nested too deeply");
  for (const auto& item : list) {
    if (item.is_string()) {
      out->append(item.get_ref<const std::string&>());
    } else if (item.is_array()) {
      absl::Status s = AppendCharlist(out, item, depth + 1);
      if (!s.ok()) return s;
    } else if (item.is_number_integer()) {
      const int64_t cp = item.get<int64_t>();
      if (cp < 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return absl::InvalidArgumentError(
            absl::StrCat("cannot convert the list to a string: ", cp, " is not a code point"));
      }
      AppendUtf8(out, static_cast<uint32_t>(cp));
    } else {
      return absl::InvalidArgumentError(
          "cannot convert the list to a string: it holds a value that is not text");
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string ElixirFloatToString(double value) {
  if (value == 0) return std::signbit(value) ? "-0.0" : "0.0";
  if (!std::isfinite(value)) return std::isnan(value) ? "nan" : (value > 0 ? "inf" : "-inf");
  char buf[64];
  auto result =
      std::to_chars(buf, buf + sizeof(buf), std::fabs(value), std::chars_format::scientific);
  absl::string_view sci(buf, static_cast<size_t>(result.ptr - buf));
  // sci = d[.ddd]e[+-]XX with the shortest round-trip digits.
  const size_t e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e)) {
    if (c != '.') digits.push_back(c);
  }
  const int exp10 = std::atoi(std::string(sci.substr(e + 1)).c_str());
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  const int place = exp10 - static_cast<int>(digits.size()) + 1;
  std::string text = InsertDecimal(place, digits, value);
  return value < 0 ? "-" + text : text;
}

std::string JasonEncode(const nlohmann::json& value, bool pretty) {
  std::string out;
  Encode(&out, value, pretty, 0);
  return out;
}

absl::StatusOr<std::string> ElixirToString(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::null:
      return std::string();
    case nlohmann::json::value_t::boolean:
      return std::string(value.get<bool>() ? "true" : "false");
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
      return value.dump();
    case nlohmann::json::value_t::number_float:
      return ElixirFloatToString(value.get<double>());
    case nlohmann::json::value_t::string:
      return value.get<std::string>();
    case nlohmann::json::value_t::array: {
      std::string out;
      absl::Status s = AppendCharlist(&out, value, 0);
      if (!s.ok()) return s;
      return out;
    }
    default:
      return absl::InvalidArgumentError(
          "a map cannot be converted to text (pipeline_ex raises Protocol.UndefinedError)");
  }
}

std::optional<nlohmann::json> ParseJsonSafely(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return std::nullopt;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  nlohmann::json parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return std::nullopt;
  return parsed;
}

bool ElixirTruthy(const nlohmann::json& value) {
  if (value.is_null()) return false;
  if (value.is_boolean()) return value.get<bool>();
  if (value.is_string()) return !value.get_ref<const std::string&>().empty();
  if (value.is_array() || value.is_object()) return !value.empty();
  return true;
}

}  // namespace elexirion::pipeline
