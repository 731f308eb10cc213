// A fixed-size thread pool with a bounded queue. Used where gRPC threads must not wait on
// slow work (model calls): the RPC layer schedules the work and answers from the pool.
#pragma once

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace elexirion {

// Thread safe.
class ThreadPool {
 public:
  // `threads` workers; at most `max_queued` tasks wait (0 = unbounded).
  ThreadPool(int threads, size_t max_queued);
  // Runs every queued task, then joins the workers.
  ~ThreadPool();

  // False (and `task` is not run) when the queue is full or the pool is stopping.
  bool TrySchedule(std::function<void()> task);

  size_t queued() const;

 private:
  void Work();

  const size_t max_queued_;
  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace elexirion
