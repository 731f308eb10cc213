#include "server/app/store_readiness.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace elexirion::app {

absl::StatusOr<std::unique_ptr<StoreReadiness>> StoreReadiness::Create(Options options) {
  if (!options.ping) return absl::InvalidArgumentError("StoreReadiness: ping is required");
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("StoreReadiness: timeout must be positive");
  }
  std::unique_ptr<StoreReadiness> readiness(new StoreReadiness(std::move(options)));
  readiness->thread_ = std::thread([r = readiness.get()] { r->Loop(); });
  return readiness;
}

StoreReadiness::~StoreReadiness() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void StoreReadiness::Loop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || wanted_; };
      mu_.Await(absl::Condition(&work));
      if (stopping_) return;
      wanted_ = false;
      pinging_ = true;
      ++pings_;
    }
    absl::Status status = options_.ping();
    absl::MutexLock lock(&mu_);
    pinging_ = false;
    last_ = std::move(status);
    last_at_ = absl::Now();
  }
}

absl::Status StoreReadiness::Check() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  if (now - last_at_ < options_.cache_for) return last_;
  const absl::Time asked = now;
  if (!pinging_) wanted_ = true;
  // An answer that arrives after we asked (a ping already running counts: its answer is as
  // fresh as the cache allows).
  auto answered = [this, asked]()
                      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return last_at_ >= asked || stopping_; };
  if (!mu_.AwaitWithTimeout(absl::Condition(&answered), options_.timeout)) {
    return absl::UnavailableError(
        absl::StrCat("store: no answer within ", absl::FormatDuration(options_.timeout)));
  }
  return last_;
}

int64_t StoreReadiness::pings() const {
  absl::MutexLock lock(&mu_);
  return pings_;
}

}  // namespace elexirion::app
