#include "server/optimizer/py_random.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace elexirion::optimizer {
namespace {

constexpr int kM = 397;
constexpr uint32_t kMatrixA = 0x9908b0dfU;
constexpr uint32_t kUpperMask = 0x80000000U;
constexpr uint32_t kLowerMask = 0x7fffffffU;

int BitLength(uint64_t n) {
  int bits = 0;
  while (n != 0) {
    ++bits;
    n >>= 1;
  }
  return bits;
}

}  // namespace

void PyRandom::InitGenrand(uint32_t s) {
  mt_[0] = s;
  for (int i = 1; i < kN; ++i) {
    mt_[i] = 1812433253U * (mt_[i - 1] ^ (mt_[i - 1] >> 30)) + static_cast<uint32_t>(i);
  }
  mti_ = kN;
}

void PyRandom::Seed(int64_t seed) {
  // CPython: key = the absolute value's 32-bit words, least significant first; 0 -> [0].
  uint64_t value = seed < 0 ? static_cast<uint64_t>(-(seed + 1)) + 1 : static_cast<uint64_t>(seed);
  std::vector<uint32_t> key;
  while (value != 0) {
    key.push_back(static_cast<uint32_t>(value & 0xffffffffU));
    value >>= 32;
  }
  if (key.empty()) key.push_back(0);

  InitGenrand(19650218U);
  int i = 1;
  size_t j = 0;
  const size_t key_length = key.size();
  for (size_t k = (static_cast<size_t>(kN) > key_length ? kN : key_length); k > 0; --k) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1664525U)) + key[j] +
             static_cast<uint32_t>(j);
    ++i;
    ++j;
    if (i >= kN) {
      mt_[0] = mt_[kN - 1];
      i = 1;
    }
    if (j >= key_length) j = 0;
  }
  for (int k = kN - 1; k > 0; --k) {
    mt_[i] =
        (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1566083941U)) - static_cast<uint32_t>(i);
    ++i;
    if (i >= kN) {
      mt_[0] = mt_[kN - 1];
      i = 1;
    }
  }
  mt_[0] = 0x80000000U;
  mti_ = kN;
}

uint32_t PyRandom::Next32() {
  if (mti_ >= kN) {
    int kk = 0;
    for (; kk < kN - kM; ++kk) {
      const uint32_t y = (mt_[kk] & kUpperMask) | (mt_[kk + 1] & kLowerMask);
      mt_[kk] = mt_[kk + kM] ^ (y >> 1) ^ ((y & 1U) ? kMatrixA : 0U);
    }
    for (; kk < kN - 1; ++kk) {
      const uint32_t y = (mt_[kk] & kUpperMask) | (mt_[kk + 1] & kLowerMask);
      mt_[kk] = mt_[kk + (kM - kN)] ^ (y >> 1) ^ ((y & 1U) ? kMatrixA : 0U);
    }
    const uint32_t y = (mt_[kN - 1] & kUpperMask) | (mt_[0] & kLowerMask);
    mt_[kN - 1] = mt_[kM - 1] ^ (y >> 1) ^ ((y & 1U) ? kMatrixA : 0U);
    mti_ = 0;
  }
  uint32_t y = mt_[mti_++];
  y ^= (y >> 11);
  y ^= (y << 7) & 0x9d2c5680U;
  y ^= (y << 15) & 0xefc60000U;
  y ^= (y >> 18);
  return y;
}

uint64_t PyRandom::GetRandBits(int k) {
  if (k <= 0) return 0;
  if (k <= 32) return Next32() >> (32 - k);
  // CPython fills 32-bit words least significant first; the last word keeps its top bits.
  const uint64_t low = Next32();
  const uint64_t high = Next32() >> (64 - k);
  return low | (high << 32);
}

uint64_t PyRandom::RandBelow(uint64_t n) {
  if (n == 0) return 0;
  const int k = BitLength(n);
  uint64_t r = GetRandBits(k);
  while (r >= n) r = GetRandBits(k);
  return r;
}

int64_t PyRandom::RandInt(int64_t a, int64_t b) {
  if (b < a) return a;
  return a + static_cast<int64_t>(RandBelow(static_cast<uint64_t>(b - a) + 1));
}

double PyRandom::Random() {
  const uint32_t a = Next32() >> 5;
  const uint32_t b = Next32() >> 6;
  return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
}

std::vector<size_t> PyRandom::SampleIndices(size_t n, size_t k) {
  if (k > n) k = n;
  std::vector<size_t> result;
  result.reserve(k);
  // CPython switches from a pool to a set of selected indices when the set is smaller.
  size_t setsize = 21;
  if (k > 5) {
    const double exponent = std::ceil(std::log(static_cast<double>(k) * 3) / std::log(4.0));
    setsize += static_cast<size_t>(std::pow(4.0, exponent));
  }
  if (n <= setsize) {
    std::vector<size_t> pool(n);
    for (size_t i = 0; i < n; ++i) pool[i] = i;
    for (size_t i = 0; i < k; ++i) {
      const size_t j = static_cast<size_t>(RandBelow(n - i));
      result.push_back(pool[j]);
      pool[j] = pool[n - i - 1];
    }
  } else {
    std::set<size_t> selected;
    for (size_t i = 0; i < k; ++i) {
      size_t j = static_cast<size_t>(RandBelow(n));
      while (selected.count(j) != 0) j = static_cast<size_t>(RandBelow(n));
      selected.insert(j);
      result.push_back(j);
    }
  }
  return result;
}

size_t PyRandom::WeightedChoiceIndex(const std::vector<double>& weights) {
  std::vector<double> cum;
  double total = 0;
  for (double w : weights) cum.push_back(total += w);
  if (!(total > 0)) return ChoiceIndex(weights.size());
  const double x = Random() * total;
  return static_cast<size_t>(std::upper_bound(cum.begin(), cum.end() - 1, x) - cum.begin());
}

}  // namespace elexirion::optimizer
