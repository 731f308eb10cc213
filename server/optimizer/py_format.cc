#include "server/optimizer/py_format.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "server/common/json_text.h"

namespace elexirion::optimizer {
namespace {

absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }


std::string NumberText(const ojson& v) {
  if (v.is_number_integer()) return v.dump();
  return PyFloatRepr(v.get<double>());
}

void Dump(const ojson& v, int indent, int level, std::string* out) {
  const bool pretty = indent >= 0;
  const std::string pad = pretty ? std::string(static_cast<size_t>(indent * (level + 1)), ' ') : "";
  const std::string close_pad = pretty ? std::string(static_cast<size_t>(indent * level), ' ') : "";
  switch (v.type()) {
    case ojson::value_t::object: {
      if (v.empty()) {
        out->append("{}");
        return;
      }
      out->push_back('{');
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!first) out->append(pretty ? "," : ", ");
        first = false;
        if (pretty) {
          out->push_back('\n');
          out->append(pad);
        }
        AppendJsonQuoted(it.key(), out);
        out->append(": ");
        Dump(it.value(), indent, level + 1, out);
      }
      if (pretty) {
        out->push_back('\n');
        out->append(close_pad);
      }
      out->push_back('}');
      return;
    }
    case ojson::value_t::array: {
      if (v.empty()) {
        out->append("[]");
        return;
      }
      out->push_back('[');
      bool first = true;
      for (const ojson& item : v) {
        if (!first) out->append(pretty ? "," : ", ");
        first = false;
        if (pretty) {
          out->push_back('\n');
          out->append(pad);
        }
        Dump(item, indent, level + 1, out);
      }
      if (pretty) {
        out->push_back('\n');
        out->append(close_pad);
      }
      out->push_back(']');
      return;
    }
    case ojson::value_t::string:
      AppendJsonQuoted(v.get_ref<const std::string&>(), out);
      return;
    case ojson::value_t::boolean:
      out->append(v.get<bool>() ? "true" : "false");
      return;
    case ojson::value_t::null:
    case ojson::value_t::discarded:
      out->append("null");
      return;
    case ojson::value_t::number_float: {
      const double d = v.get<double>();
      if (std::isnan(d)) {
        out->append("NaN");
      } else if (std::isinf(d)) {
        out->append(d > 0 ? "Infinity" : "-Infinity");
      } else {
        out->append(PyFloatRepr(d));
      }
      return;
    }
    default:
      out->append(NumberText(v));
      return;
  }
}

void Repr(const ojson& v, std::string* out) {
  switch (v.type()) {
    case ojson::value_t::object: {
      out->push_back('{');
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!first) out->append(", ");
        first = false;
        out->append(PyStringRepr(it.key()));
        out->append(": ");
        Repr(it.value(), out);
      }
      out->push_back('}');
      return;
    }
    case ojson::value_t::array: {
      out->push_back('[');
      bool first = true;
      for (const ojson& item : v) {
        if (!first) out->append(", ");
        first = false;
        Repr(item, out);
      }
      out->push_back(']');
      return;
    }
    case ojson::value_t::string:
      out->append(PyStringRepr(v.get_ref<const std::string&>()));
      return;
    case ojson::value_t::boolean:
      out->append(v.get<bool>() ? "True" : "False");
      return;
    case ojson::value_t::null:
    case ojson::value_t::discarded:
      out->append("None");
      return;
    case ojson::value_t::number_float: {
      const double d = v.get<double>();
      if (std::isnan(d)) {
        out->append("nan");
      } else if (std::isinf(d)) {
        out->append(d > 0 ? "inf" : "-inf");
      } else {
        out->append(PyFloatRepr(d));
      }
      return;
    }
    default:
      out->append(NumberText(v));
      return;
  }
}

// A small recursive-descent reader for JSON plus Python literal syntax.
class LenientParser {
 public:
  explicit LenientParser(std::string_view text) : s_(text) {}

  std::optional<ojson> ParseDocument() {
    SkipSpace();
    std::optional<ojson> v = ParseValue(0);
    if (!v.has_value()) return std::nullopt;
    SkipSpace();
    if (pos_ != s_.size()) return std::nullopt;
    return v;
  }

 private:
  static constexpr int kMaxDepth = 64;

  void SkipSpace() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool Consume(char c) {
    SkipSpace();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  bool ConsumeWord(std::string_view word) {
    if (s_.substr(pos_, word.size()) == word) {
      const size_t end = pos_ + word.size();
      if (end < s_.size() &&
          (std::isalnum(static_cast<unsigned char>(s_[end])) || s_[end] == '_')) {
        return false;
      }
      pos_ = end;
      return true;
    }
    return false;
  }

  std::optional<ojson> ParseValue(int depth) {
    if (depth > kMaxDepth) return std::nullopt;
    SkipSpace();
    if (pos_ >= s_.size()) return std::nullopt;
    const char c = s_[pos_];
    if (c == '{') return ParseObject(depth);
    if (c == '[') return ParseArray(depth, ']');
    if (c == '(') return ParseArray(depth, ')');
    if (c == '"' || c == '\'') return ParseString();
    if (ConsumeWord("true") || ConsumeWord("True")) return ojson(true);
    if (ConsumeWord("false") || ConsumeWord("False")) return ojson(false);
    if (ConsumeWord("null") || ConsumeWord("None")) return ojson(nullptr);
    return ParseNumber();
  }

  std::optional<ojson> ParseObject(int depth) {
    ++pos_;  // '{'
    ojson obj = ojson::object();
    while (true) {
      SkipSpace();
      if (pos_ >= s_.size()) return obj;  // missing closing brace: repair
      if (s_[pos_] == '}') {
        ++pos_;
        return obj;
      }
      std::optional<ojson> key = ParseValue(depth + 1);
      if (!key.has_value()) return std::nullopt;
      std::string key_text = key->is_string() ? key->get<std::string>() : key->dump();
      if (!Consume(':')) return std::nullopt;
      std::optional<ojson> value = ParseValue(depth + 1);
      if (!value.has_value()) return std::nullopt;
      obj[key_text] = std::move(*value);
      SkipSpace();
      if (Consume(',')) continue;
      SkipSpace();
      if (pos_ >= s_.size()) return obj;
      if (s_[pos_] == '}') continue;
      return std::nullopt;
    }
  }

  std::optional<ojson> ParseArray(int depth, char close) {
    ++pos_;
    ojson arr = ojson::array();
    while (true) {
      SkipSpace();
      if (pos_ >= s_.size()) return arr;
      if (s_[pos_] == close) {
        ++pos_;
        return arr;
      }
      std::optional<ojson> value = ParseValue(depth + 1);
      if (!value.has_value()) return std::nullopt;
      arr.push_back(std::move(*value));
      SkipSpace();
      if (Consume(',')) continue;
      SkipSpace();
      if (pos_ >= s_.size()) return arr;
      if (s_[pos_] == close) continue;
      return std::nullopt;
    }
  }

  static void AppendUtf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
      out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
  }

  std::optional<uint32_t> Hex4() {
    if (pos_ + 4 > s_.size()) return std::nullopt;
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = s_[pos_ + i];
      v <<= 4;
      if (h >= '0' && h <= '9') {
        v |= static_cast<uint32_t>(h - '0');
      } else if (h >= 'a' && h <= 'f') {
        v |= static_cast<uint32_t>(h - 'a' + 10);
      } else if (h >= 'A' && h <= 'F') {
        v |= static_cast<uint32_t>(h - 'A' + 10);
      } else {
        return std::nullopt;
      }
    }
    pos_ += 4;
    return v;
  }

  std::optional<ojson> ParseString() {
    const char quote = s_[pos_++];
    std::string out;
    while (pos_ < s_.size()) {
      const char c = s_[pos_++];
      if (c == quote) return ojson(std::move(out));
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (pos_ >= s_.size()) return std::nullopt;
      const char e = s_[pos_++];
      switch (e) {
        case 'n':
          out.push_back('\n');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'u': {
          std::optional<uint32_t> cp = Hex4();
          if (!cp.has_value()) return std::nullopt;
          uint32_t code = *cp;
          if (code >= 0xd800 && code < 0xdc00 && pos_ + 1 < s_.size() && s_[pos_] == '\\' &&
              s_[pos_ + 1] == 'u') {
            pos_ += 2;
            std::optional<uint32_t> low = Hex4();
            if (!low.has_value()) return std::nullopt;
            code = 0x10000 + ((code - 0xd800) << 10) + (*low - 0xdc00);
          }
          AppendUtf8(code, &out);
          break;
        }
        default:
          out.push_back(e);
      }
    }
    return std::nullopt;  // unterminated
  }

  std::optional<ojson> ParseNumber() {
    const size_t start = pos_;
    if (pos_ < s_.size() && (s_[pos_] == '-' || s_[pos_] == '+')) ++pos_;
    bool is_float = false;
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      if (std::isdigit(static_cast<unsigned char>(c))) {
        ++pos_;
      } else if (c == '.' || c == 'e' || c == 'E' ||
                 ((c == '-' || c == '+') && pos_ > start &&
                  (s_[pos_ - 1] == 'e' || s_[pos_ - 1] == 'E'))) {
        is_float = true;
        ++pos_;
      } else {
        break;
      }
    }
    if (pos_ == start) return std::nullopt;
    std::string text(s_.substr(start, pos_ - start));
    if (text[0] == '+') text.erase(0, 1);
    if (!is_float) {
      int64_t v = 0;
      auto r = std::from_chars(text.data(), text.data() + text.size(), v);
      if (r.ec == std::errc() && r.ptr == text.data() + text.size()) return ojson(v);
    }
    char* end = nullptr;
    const double d = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size()) return std::nullopt;
    return ojson(d);
  }

  std::string_view s_;
  size_t pos_ = 0;
};

// The body of a ```lang fenced block, if `text` is one.
std::optional<std::string_view> FencedBody(std::string_view text) {
  absl::string_view t = absl::StripAsciiWhitespace(Sv(text));
  if (!absl::StartsWith(t, "```")) return std::nullopt;
  const size_t newline = t.find('\n');
  if (newline == absl::string_view::npos) return std::nullopt;
  absl::string_view body = t.substr(newline + 1);
  const size_t fence = body.rfind("```");
  if (fence != absl::string_view::npos) body = body.substr(0, fence);
  return std::string_view(body.data(), body.size());
}

}  // namespace

std::string PyFloatRepr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  if (value == 0) return std::signbit(value) ? "-0.0" : "0.0";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::scientific);
  std::string sci(buf, r.ptr);
  // sci = [-]d[.ddd]e[+-]XX: split into digits and decimal exponent.
  bool negative = false;
  if (!sci.empty() && sci[0] == '-') {
    negative = true;
    sci.erase(0, 1);
  }
  const size_t e = sci.find('e');
  std::string mantissa = sci.substr(0, e);
  const int exponent = std::atoi(sci.c_str() + e + 1);
  std::string digits;
  for (char c : mantissa) {
    if (c != '.') digits.push_back(c);
  }
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  const int decpt = exponent + 1;  // value = 0.DIGITS * 10^decpt
  std::string out = negative ? "-" : "";
  if (decpt <= -4 || decpt > 16) {
    out += digits.substr(0, 1);
    if (digits.size() > 1) absl::StrAppend(&out, ".", digits.substr(1));
    const int exp10 = decpt - 1;
    absl::StrAppend(&out, "e", exp10 < 0 ? "-" : "+");
    const int mag = exp10 < 0 ? -exp10 : exp10;
    if (mag < 10) out += "0";
    absl::StrAppend(&out, mag);
    return out;
  }
  if (decpt <= 0) {
    absl::StrAppend(&out, "0.", std::string(static_cast<size_t>(-decpt), '0'), digits);
    return out;
  }
  if (static_cast<size_t>(decpt) >= digits.size()) {
    absl::StrAppend(&out, digits, std::string(static_cast<size_t>(decpt) - digits.size(), '0'),
                    ".0");
    return out;
  }
  absl::StrAppend(&out, digits.substr(0, static_cast<size_t>(decpt)), ".",
                  digits.substr(static_cast<size_t>(decpt)));
  return out;
}

std::string PyStringRepr(std::string_view text) {
  const bool has_single = text.find('\'') != std::string_view::npos;
  const bool has_double = text.find('"') != std::string_view::npos;
  const char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (unsigned char c : text) {
    if (c == static_cast<unsigned char>(quote) || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\n') {
      out.append("\\n");
    } else if (c == '\r') {
      out.append("\\r");
    } else if (c == '\t') {
      out.append("\\t");
    } else if (c < 0x20 || c == 0x7f) {
      static const char* kHex = "0123456789abcdef";
      out.append("\\x");
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  out.push_back(quote);
  return out;
}

std::string PyJsonDumps(const ojson& value, int indent) {
  std::string out;
  Dump(value, indent, 0, &out);
  return out;
}

std::string PyStr(const ojson& value) {
  if (value.is_string()) return value.get<std::string>();
  std::string out;
  Repr(value, &out);
  return out;
}

std::string PyRepr(const ojson& value) {
  std::string out;
  Repr(value, &out);
  return out;
}

std::optional<ojson> LenientJsonLoads(std::string_view text) {
  if (std::optional<std::string_view> body = FencedBody(text)) text = *body;
  absl::string_view stripped = absl::StripAsciiWhitespace(Sv(text));
  if (stripped.empty()) return std::nullopt;
  return LenientParser(std::string_view(stripped.data(), stripped.size())).ParseDocument();
}

std::optional<std::string> FirstJsonObject(std::string_view text) {
  size_t start = text.find('{');
  while (start != std::string_view::npos) {
    int depth = 0;
    char quote = 0;
    bool escape = false;
    for (size_t i = start; i < text.size(); ++i) {
      const char c = text[i];
      if (quote != 0) {
        if (escape) {
          escape = false;
        } else if (c == '\\') {
          escape = true;
        } else if (c == quote) {
          quote = 0;
        }
        continue;
      }
      if (c == '"') {
        quote = c;
      } else if (c == '{') {
        ++depth;
      } else if (c == '}') {
        if (--depth == 0) return std::string(text.substr(start, i - start + 1));
      }
    }
    start = text.find('{', start + 1);
  }
  return std::nullopt;
}

}  // namespace elexirion::optimizer
