#include "client/cli/text_file.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/cli/command.h"

namespace elexirion::cli {
namespace {

// Length of the well-formed UTF-8 sequence at the start of `text`, or 0 when it is not one.
// The ranges of the second byte are those of RFC 3629's table, which excludes overlong forms,
// surrogates and code points beyond U+10FFFF.
size_t SequenceLength(absl::string_view text) {
  auto at = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = at(0);
  if (lead < 0x80) return 1;
  size_t length;
  unsigned char low = 0x80;
  unsigned char high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  if (text.size() < length || at(1) < low || at(1) > high) return 0;
  for (size_t i = 2; i < length; ++i) {
    if (at(i) < 0x80 || at(i) > 0xBF) return 0;
  }
  return length;
}

}  // namespace

std::optional<Utf8Error> FindInvalidUtf8(absl::string_view text) {
  Utf8Error where;
  for (size_t i = 0; i < text.size();) {
    const size_t length = SequenceLength(text.substr(i));
    if (length == 0) {
      where.offset = i;
      where.byte = static_cast<unsigned char>(text[i]);
      return where;
    }
    if (text[i] == '\n') {
      ++where.line;
      where.column = 1;
    } else {
      ++where.column;
    }
    i += length;
  }
  return std::nullopt;
}

absl::Status CheckUtf8(absl::string_view what, absl::string_view text) {
  const std::optional<Utf8Error> bad = FindInvalidUtf8(text);
  if (!bad.has_value()) return absl::OkStatus();
  return UsageError(absl::StrFormat("%s: not UTF-8: byte 0x%02X at offset %d (line %d, column %d)",
                                    what, bad->byte, bad->offset, bad->line, bad->column));
}

absl::StatusOr<std::string> ReadTextFile(absl::string_view flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return UsageError(absl::StrCat(flag, ": cannot read \"", path, "\""));
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return UsageError(absl::StrCat(flag, ": error reading \"", path, "\""));
  if (absl::Status s = CheckUtf8(absl::StrCat(flag, ": ", path), text.str()); !s.ok()) return s;
  return text.str();
}

}  // namespace elexirion::cli
