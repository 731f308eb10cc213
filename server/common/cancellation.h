// Cooperative cancellation shared by jobs, the optimizer and in-flight LLM calls.
#pragma once

#include <atomic>
#include <string>

#include "absl/synchronization/mutex.h"

namespace elexirion {

// A one-way flag: once cancelled it stays cancelled. Cheap to poll from any thread (curl
// progress callbacks poll it to abort transfers). Thread safe.
class CancellationToken {
 public:
  void Cancel(std::string reason = "cancelled") {
    {
      absl::MutexLock lock(&mu_);
      if (cancelled_.load()) return;
      reason_ = std::move(reason);
    }
    cancelled_.store(true, std::memory_order_release);
  }
  bool IsCancelled() const { return cancelled_.load(std::memory_order_acquire); }
  std::string reason() const {
    absl::MutexLock lock(&mu_);
    return reason_;
  }

 private:
  std::atomic<bool> cancelled_{false};
  mutable absl::Mutex mu_;
  std::string reason_ ABSL_GUARDED_BY(mu_);
};

}  // namespace elexirion
