// Live fan-out of job progress events to StreamProgress watchers. Events are persisted first
// (the store is the source of truth, with sequence numbers); the bus only pushes copies to
// whoever watches now, so a publisher never waits for a watcher: callbacks must be quick and
// non-blocking (watchers buffer a bounded number of events and catch up from the store).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "elexirion/v1/jobs.pb.h"

namespace elexirion::jobs {

// Thread safe. After Unsubscribe() returns, the callback is never called again.
//
// Publish() holds the bus lock only to copy the job's subscriber list, and runs the callbacks
// outside it, each under its subscription's own lock: a slow callback delays neither other
// jobs' publishers nor Subscribe/Unsubscribe of other watchers (1,000 watchers come and go
// while events flow), and Unsubscribe() still waits out a call in progress.
class JobEventBus {
 public:
  using Callback = std::function<void(const v1::ProgressEvent&)>;

  int64_t Subscribe(const std::string& job_id, Callback callback);
  void Unsubscribe(int64_t token);
  void Publish(const v1::ProgressEvent& event);
  int subscribers() const;

 private:
  struct Subscription {
    Subscription(std::string job, Callback cb) : job_id(std::move(job)), callback(std::move(cb)) {}
    const std::string job_id;
    const Callback callback;
    // Held while the callback runs.
    absl::Mutex mu;
    bool active ABSL_GUARDED_BY(mu) = true;
  };
  mutable absl::Mutex mu_;
  int64_t next_token_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<int64_t, std::shared_ptr<Subscription>> subscriptions_ ABSL_GUARDED_BY(mu_);
  std::multimap<std::string, int64_t> by_job_ ABSL_GUARDED_BY(mu_);
};

}  // namespace elexirion::jobs
