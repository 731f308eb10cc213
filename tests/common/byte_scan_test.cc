#include "server/common/byte_scan.h"

#include <cstring>
#include <random>

#include "gtest/gtest.h"

namespace elexirion::bytes {
namespace {

// Each word test against the byte-by-byte answer, on random words and on words built from
// the bytes at the edges (0, below/at/above the limits, 0x7f/0x80, 0xff).
TEST(ByteScanTest, AgreesWithAByteLoop) {
  std::mt19937_64 rng(11);
  const uint8_t edges[] = {0x00, 0x01, 0x09, 0x0a, 0x0d, 0x1f, 0x20, 0x21, 0x22,
                           0x5c, 0x7e, 0x7f, 0x80, 0x81, 0xc3, 0xfe, 0xff};
  for (int round = 0; round < 200000; ++round) {
    char buf[8];
    if (round % 2 == 0) {
      const uint64_t word = rng();
      std::memcpy(buf, &word, 8);
    } else {
      for (char& c : buf) c = static_cast<char>(edges[rng() % sizeof(edges)]);
    }
    const uint64_t word = LoadWord(buf);
    bool zero = false, quote = false, below = false, high = false;
    for (char c : buf) {
      const auto b = static_cast<uint8_t>(c);
      zero |= b == 0;
      quote |= b == '"';
      below |= b < 0x20;
      high |= b >= 0x80;
    }
    ASSERT_EQ(HasZeroByte(word), zero) << std::hex << word;
    ASSERT_EQ(HasByte(word, '"'), quote) << std::hex << word;
    ASSERT_EQ(HasByteBelow(word, 0x20), below) << std::hex << word;
    ASSERT_EQ(HasNonAscii(word), high) << std::hex << word;
  }
}

}  // namespace
}  // namespace elexirion::bytes
