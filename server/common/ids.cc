#include "server/common/ids.h"

#include <unistd.h>

#include <cstdint>
#include <random>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace elexirion {

std::string RandomHexId(int length) {
  static absl::Mutex mu(absl::kConstInit);
  static std::mt19937_64* rng ABSL_GUARDED_BY(mu) = nullptr;
  // A forked child must not repeat its parent's sequence: reseed when the pid changes.
  static pid_t seeded_pid ABSL_GUARDED_BY(mu) = 0;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(static_cast<size_t>(length), '0');
  absl::MutexLock lock(&mu);
  if (rng == nullptr || seeded_pid != ::getpid()) {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd()};
    delete rng;
    rng = new std::mt19937_64(seq);
    seeded_pid = ::getpid();
  }
  for (auto& c : id) c = kHex[(*rng)() & 0xf];
  return id;
}

std::string TimeOrderedHexId() {
  static absl::Mutex mu(absl::kConstInit);
  static uint32_t counter ABSL_GUARDED_BY(mu) = 0;
  static pid_t started_pid ABSL_GUARDED_BY(mu) = 0;
  static constexpr char kHex[] = "0123456789abcdef";
  uint32_t n;
  {
    absl::MutexLock lock(&mu);
    if (started_pid != ::getpid()) {
      counter = static_cast<uint32_t>(std::stoul(RandomHexId(5), nullptr, 16));
      started_pid = ::getpid();
    }
    n = counter++ & 0xfffff;
  }
  const uint64_t ms = static_cast<uint64_t>(absl::ToUnixMillis(absl::Now()));
  std::string id(16, '0');
  for (int i = 10; i >= 0; --i) id[static_cast<size_t>(10 - i)] = kHex[(ms >> (4 * i)) & 0xf];
  for (int i = 4; i >= 0; --i) id[static_cast<size_t>(15 - i)] = kHex[(n >> (4 * i)) & 0xf];
  return id;
}

}  // namespace elexirion
