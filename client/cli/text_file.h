// Text the CLI sends to the server: files read whole and checked to be UTF-8, because every
// proto3 `string` field must be, and a message with invalid UTF-8 would otherwise fail inside
// libprotobuf (an opaque serialization error) instead of naming the file and the byte.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace elexirion::cli {

// Where the first byte that does not belong to well-formed UTF-8 is.
struct Utf8Error {
  size_t offset = 0;       // from the start, in bytes
  int line = 1;            // 1-based
  int column = 1;          // 1-based, in characters
  unsigned char byte = 0;  // the offending byte
};

// The first ill-formed byte of `text` (RFC 3629: overlong forms, UTF-16 surrogates and code
// points beyond U+10FFFF are ill-formed), or nullopt when all of it is UTF-8.
std::optional<Utf8Error> FindInvalidUtf8(absl::string_view text);

// OK, or a usage error "WHAT: not UTF-8: byte 0xE9 at offset 21 (line 2, column 12)".
absl::Status CheckUtf8(absl::string_view what, absl::string_view text);

// The whole file at `path`, checked to be UTF-8. Usage error naming `flag` and the path when
// it cannot be read or is not UTF-8.
absl::StatusOr<std::string> ReadTextFile(absl::string_view flag, const std::string& path);

}  // namespace elexirion::cli
