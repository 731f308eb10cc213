// Word-at-a-time byte tests for the hot text loops on the telemetry path (JSON escaping,
// UTF-8 checks, COPY escaping): each test answers for 8 bytes at once, so runs of ordinary
// text cost about one step per word instead of one per byte.
#pragma once

#include <cstdint>
#include <cstring>

namespace elexirion::bytes {

inline constexpr uint64_t kOnes = 0x0101010101010101ULL;
inline constexpr uint64_t kHighBits = 0x8080808080808080ULL;

// The 8 bytes at p (unaligned).
inline uint64_t LoadWord(const char* p) {
  uint64_t word;
  std::memcpy(&word, p, sizeof(word));
  return word;
}

// Some byte of `word` is 0.
inline bool HasZeroByte(uint64_t word) { return ((word - kOnes) & ~word & kHighBits) != 0; }

// Some byte of `word` equals `byte`.
inline bool HasByte(uint64_t word, uint8_t byte) { return HasZeroByte(word ^ (kOnes * byte)); }

// Some byte of `word` is below `limit` (limit <= 128).
inline bool HasByteBelow(uint64_t word, uint8_t limit) {
  return ((word - kOnes * limit) & ~word & kHighBits) != 0;
}

// Some byte of `word` has its high bit set (not ASCII).
inline bool HasNonAscii(uint64_t word) { return (word & kHighBits) != 0; }

}  // namespace elexirion::bytes
