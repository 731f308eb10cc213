#include "server/llm/rate_limiter.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "server/llm/errors.h"

namespace elexirion::llm {
namespace {

constexpr absl::Duration kSlice = absl::Milliseconds(50);

absl::Status CheckStop(Clock* clock, absl::Time deadline, const CancellationToken* cancel) {
  if (cancel != nullptr && cancel->IsCancelled()) {
    return CancelledError(absl::StrCat("cancelled: ", cancel->reason()));
  }
  if (clock->Now() >= deadline) return DeadlineError("deadline exceeded waiting for a slot");
  return absl::OkStatus();
}

}  // namespace

absl::Status ConcurrencyLimiter::Acquire(Clock* clock, absl::Time deadline,
                                         const CancellationToken* cancel) {
  absl::MutexLock lock(&mu_);
  auto free = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return in_use_ < max_; };
  while (!free()) {
    absl::Status stop = CheckStop(clock, deadline, cancel);
    if (!stop.ok()) return stop;
    mu_.AwaitWithTimeout(absl::Condition(&free), kSlice);
  }
  ++in_use_;
  return absl::OkStatus();
}

void ConcurrencyLimiter::Release() {
  absl::MutexLock lock(&mu_);
  --in_use_;
}

int ConcurrencyLimiter::in_use() const {
  absl::MutexLock lock(&mu_);
  return in_use_;
}

TokenBucket::TokenBucket(double per_minute, Clock* clock)
    : per_minute_(per_minute), clock_(clock), tokens_(per_minute), last_(clock->Now()) {}

void TokenBucket::RefillLocked() {
  absl::Time now = clock_->Now();
  if (now > last_) {
    tokens_ = std::min(per_minute_, tokens_ + absl::ToDoubleMinutes(now - last_) * per_minute_);
    last_ = now;
  }
}

absl::Status TokenBucket::Acquire(double n, absl::Time deadline, const CancellationToken* cancel) {
  if (!enabled()) return absl::OkStatus();
  const double need = std::min(n, per_minute_);  // oversize requests wait for a full bucket
  while (true) {
    absl::Duration wait;
    {
      absl::MutexLock lock(&mu_);
      RefillLocked();
      if (tokens_ >= need) {
        tokens_ -= n;
        return absl::OkStatus();
      }
      wait = absl::Minutes((need - tokens_) / per_minute_);
    }
    absl::Status stop = CheckStop(clock_, deadline, cancel);
    if (!stop.ok()) return stop;
    if (clock_->Now() + wait > deadline) {
      return DeadlineError("deadline exceeded waiting for the rate limit");
    }
    clock_->SleepFor(std::min(std::max(wait, absl::Milliseconds(1)), kSlice));
  }
}

void TokenBucket::Charge(double n) {
  if (!enabled()) return;
  absl::MutexLock lock(&mu_);
  RefillLocked();
  tokens_ = std::max(-per_minute_, tokens_ - n);
}

}  // namespace elexirion::llm
