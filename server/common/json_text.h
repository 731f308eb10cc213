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

}  // namespace elexirion
