// Identifiers: random, or ordered by time.
#pragma once

#include <string>

namespace elexirion {

// A random lowercase hex id of `length` characters from a CSPRNG-seeded generator.
std::string RandomHexId(int length = 16);

// A 16-hex-char id that sorts by creation time: 11 chars of Unix milliseconds, then 5 of a
// per-process counter with a random start. Rows keyed by it append to their index instead of
// landing on a random page. Unique within a process (below a million ids per millisecond);
// two processes collide only on the same millisecond AND counter value, so writers must
// still handle a duplicate key by drawing another id.
std::string TimeOrderedHexId();

}  // namespace elexirion
