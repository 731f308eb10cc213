// Per-instance admission control: a counting semaphore for in-flight calls and token
// buckets for requests/min and tokens/min. Waits end early on cancellation or deadline.
#pragma once

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/common/cancellation.h"
#include "server/common/clock.h"

namespace elexirion::llm {

// Thread safe.
class ConcurrencyLimiter {
 public:
  explicit ConcurrencyLimiter(int max) : max_(max) {}
  // Blocks until a slot is free; CANCELLED / DEADLINE_EXCEEDED (llm/errors.h kinds)
  // otherwise. `deadline` is in `clock` time.
  absl::Status Acquire(Clock* clock, absl::Time deadline, const CancellationToken* cancel);
  void Release();
  int in_use() const;

 private:
  const int max_;
  mutable absl::Mutex mu_;
  int in_use_ ABSL_GUARDED_BY(mu_) = 0;
};

// A bucket holding up to `per_minute` tokens, refilled continuously at per_minute/60 per
// second. per_minute <= 0 disables it. A request larger than the bucket waits for a full
// bucket and leaves it in debt, so it is admitted but slows the next ones. Thread safe.
class TokenBucket {
 public:
  TokenBucket(double per_minute, Clock* clock);
  // Takes `n` tokens, sleeping (on `clock`) until they are available.
  absl::Status Acquire(double n, absl::Time deadline, const CancellationToken* cancel);
  // Adjusts after the fact (e.g. the output tokens of a finished call); may go negative.
  void Charge(double n);
  bool enabled() const { return per_minute_ > 0; }

 private:
  void RefillLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const double per_minute_;
  Clock* const clock_;
  absl::Mutex mu_;
  double tokens_ ABSL_GUARDED_BY(mu_);
  absl::Time last_ ABSL_GUARDED_BY(mu_);
};

}  // namespace elexirion::llm
