// JSON string quoting shared by every writer of JSON text that must match nlohmann's dump()
// and Python's json.dumps(ensure_ascii=False): quote, backslash, \b \f \n \r \t, other
// control characters as \u00xx (lower-case hex); every other byte is copied (the caller's
// text is valid UTF-8). Plain runs are skipped 8 bytes at a time: this runs on the
// telemetry hot path.
#pragma once

#include <string>
#include <string_view>

namespace elexirion {

void AppendJsonQuoted(std::string_view text, std::string* out);

// A number as nlohmann's dump() writes the value a Struct converts to: integral values within
// 2^53 as integers, others in the shortest round-trip form. False (nothing written) when `n`
// is not finite: JSON has no NaN or Infinity.
bool AppendJsonNumber(double n, std::string* out);

// True when `text` is valid UTF-8 (what protobuf requires of proto3 strings): no overlong
// forms, surrogates or values past U+10FFFF. NUL is valid UTF-8; `allow_nul` false refuses it
// too (PostgreSQL text cannot hold it).
bool IsValidUtf8(std::string_view text, bool allow_nul = true);

}  // namespace elexirion
