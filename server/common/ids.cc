#include "server/common/ids.h"

#include <unistd.h>

#include <random>

#include "absl/synchronization/mutex.h"

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

}  // namespace elexirion
