#include "server/common/json_text.h"

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

}  // namespace elexirion
