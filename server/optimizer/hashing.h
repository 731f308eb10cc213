// Stable, platform-independent content hashes for checkpoint keys and cache-busting ids
// (not cryptographic: two independent 64-bit FNV-1a variants with a murmur finalizer).
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace elexirion::optimizer {

uint64_t Hash64(std::string_view data, uint64_t seed = 0);
// 32 hex digits (128 bits).
std::string HashHex(std::string_view data);

}  // namespace elexirion::optimizer
