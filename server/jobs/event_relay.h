// Cross-replica StreamProgress. A job runs on one replica, its watchers may be connected to
// another: every replica follows the store's job-event notifications (PostgreSQL
// LISTEN/NOTIFY, sent in the transaction of each event append) and, for the jobs watched on
// it, reads the new events from the store by seq and publishes them into its local
// JobEventBus, which drops what it already has (the local worker publishes its own jobs'
// events too). Watchers are unchanged: they see one ordered, gap-free stream.
//
// Nothing is missed across a lost connection: after every (re)connect, and every
// `sweep_interval` regardless, each watched job is re-read from its last published seq.
// Only the SQLite-less multi-replica deployment needs this; a single process never creates
// one.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/jobs/event_bus.h"
#include "server/jobs/job_notifications.h"
#include "server/store/store.h"

namespace elexirion::jobs {

// Thread safe: Start() and Stop() from any thread; the work runs on the relay's own thread.
class JobEventRelay {
 public:
  struct Options {
    store::Store* store = nullptr;                  // required
    JobEventBus* bus = nullptr;                     // required
    std::unique_ptr<JobNotificationSource> source;  // required
    // Longest wait for notifications before looking at Stop() and the sweep clock.
    absl::Duration poll = absl::Milliseconds(500);
    // Reconnect backoff: starts at min, doubles up to max.
    absl::Duration min_backoff = absl::Milliseconds(100);
    absl::Duration max_backoff = absl::Seconds(5);
    // Re-read every watched job this often even without notifications (0: only after
    // connects).
    absl::Duration sweep_interval = absl::Seconds(5);
    // A job first seen here is read from its last event minus this many (watchers read older
    // events from the store themselves).
    int first_read_window = 16;
  };

  static absl::StatusOr<std::unique_ptr<JobEventRelay>> Create(Options options);
  ~JobEventRelay();

  void Start();
  // Returns once the relay thread has ended (within about `poll`).
  void Stop();

  // Successful connects so far (1 after the first; more after reconnects).
  int64_t connects() const;

 private:
  explicit JobEventRelay(Options options) : options_(std::move(options)) {}
  void Loop();
  // Publishes the job's events after what the bus has, if the job is watched here.
  void Relay(const std::string& job_id);
  void SweepWatched();

  Options options_;
  absl::Notification stop_;
  std::thread thread_;
  mutable absl::Mutex mu_;
  int64_t connects_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace elexirion::jobs
