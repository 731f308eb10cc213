#include "server/optimizer/parallel.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

namespace elexirion::optimizer {

void ParallelFor(size_t n, int threads, const std::function<void(size_t)>& fn,
                 const std::function<bool()>& stop) {
  if (n == 0) return;
  if (threads <= 1 || n == 1) {
    for (size_t i = 0; i < n; ++i) {
      if (stop && stop()) return;
      fn(i);
    }
    return;
  }
  std::atomic<size_t> next{0};
  auto worker = [&]() {
    while (true) {
      if (stop && stop()) return;
      const size_t i = next.fetch_add(1);
      if (i >= n) return;
      fn(i);
    }
  };
  const size_t count = std::min(n, static_cast<size_t>(threads));
  std::vector<std::thread> pool;
  pool.reserve(count - 1);
  for (size_t t = 1; t < count; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& t : pool) t.join();
}

}  // namespace elexirion::optimizer
