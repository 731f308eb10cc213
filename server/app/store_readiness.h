// The store part of /readyz. Kubernetes probes every replica every few seconds; each probe
// must neither hang on an unreachable database nor cost it a query, so the answer of one
// ping is reused for `cache_for`, and a probe waits at most `timeout` for a ping in flight
// (which keeps running on the checker's own thread and updates the cached answer when done).
#pragma once

#include <functional>
#include <memory>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace elexirion::app {

// Thread safe.
class StoreReadiness {
 public:
  struct Options {
    // The check, e.g. Store::Ping. Required.
    std::function<absl::Status()> ping;
    // How long an answer (good or bad) is reused.
    absl::Duration cache_for = absl::Seconds(1);
    // How long Check() waits for a ping before answering UNAVAILABLE.
    absl::Duration timeout = absl::Seconds(1);
  };

  static absl::StatusOr<std::unique_ptr<StoreReadiness>> Create(Options options);
  // Waits for a ping in flight.
  ~StoreReadiness();

  // OK when the store answered recently; the ping's error, or UNAVAILABLE "store: no answer
  // within <timeout>", otherwise.
  absl::Status Check();
  // Pings started so far (tests).
  int64_t pings() const;

 private:
  explicit StoreReadiness(Options options) : options_(std::move(options)) {}
  void Loop();

  const Options options_;
  mutable absl::Mutex mu_;
  absl::Status last_ ABSL_GUARDED_BY(mu_);
  absl::Time last_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool wanted_ ABSL_GUARDED_BY(mu_) = false;   // a prober asked for a ping
  bool pinging_ ABSL_GUARDED_BY(mu_) = false;  // one is running
  int64_t pings_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace elexirion::app
