#include "server/optimizer/hashing.h"

#include <cstdio>

namespace elexirion::optimizer {
namespace {

uint64_t Mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

}  // namespace

uint64_t Hash64(std::string_view data, uint64_t seed) {
  uint64_t h = 0xcbf29ce484222325ULL ^ Mix(seed + 0x9e3779b97f4a7c15ULL);
  for (unsigned char c : data) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return Mix(h ^ data.size());
}

std::string HashHex(std::string_view data) {
  char buf[33];
  std::snprintf(buf, sizeof(buf), "%016llx%016llx",
                static_cast<unsigned long long>(Hash64(data, 1)),
                static_cast<unsigned long long>(Hash64(data, 2)));
  return std::string(buf, 32);
}

}  // namespace elexirion::optimizer
