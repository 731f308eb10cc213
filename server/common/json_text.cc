#include "server/common/json_text.h"

#include <cmath>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "server/common/byte_scan.h"

namespace elexirion {

void AppendJsonQuoted(std::string_view text, std::string* out) {
  out->push_back('"');
  size_t plain = 0;  // start of the run not yet copied
  for (size_t i = 0; i < text.size(); ++i) {
    // Skip words with nothing to escape.
    while (i + 8 <= text.size()) {
      const uint64_t word = bytes::LoadWord(text.data() + i);
      if (bytes::HasByteBelow(word, 0x20) || bytes::HasByte(word, '"') ||
          bytes::HasByte(word, '\\')) {
        break;
      }
      i += 8;
    }
    if (i >= text.size()) break;
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(text.data() + plain, i - plain);
    plain = i + 1;
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
      case '\f':
        out->append("\\f");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default: {
        static constexpr char kHex[] = "0123456789abcdef";
        out->append("\\u00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 0xf]);
      }
    }
  }
  out->append(text.data() + plain, text.size() - plain);
  out->push_back('"');
}

bool AppendJsonNumber(double n, std::string* out) {
  if (!std::isfinite(n)) return false;
  if (std::fabs(n) < 9007199254740992.0 && n == std::trunc(n)) {
    absl::StrAppend(out, static_cast<int64_t>(n));
  } else {
    out->append(nlohmann::json(n).dump());  // nlohmann's shortest round-trip form
  }
  return true;
}

bool IsValidUtf8(std::string_view text, bool allow_nul) {
  size_t i = 0;
  while (i < text.size()) {
    // Plain ASCII (without NUL when refused), a word at a time.
    if (i + 8 <= text.size()) {
      const uint64_t word = bytes::LoadWord(text.data() + i);
      if (!bytes::HasNonAscii(word) && (allow_nul || !bytes::HasZeroByte(word))) {
        i += 8;
        continue;
      }
    }
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == 0 && !allow_nul) return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len = 0;
    uint32_t cp = 0;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > text.size()) return false;
    for (int k = 1; k < len; ++k) {
      const unsigned char cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
      return false;
    }
    i += len;
  }
  return true;
}

}  // namespace elexirion
