// Live fan-out of job progress events to StreamProgress watchers. Events are persisted first
// (the store is the source of truth, with sequence numbers); the bus only pushes copies to
// whoever watches now, so a publisher never waits for a watcher, and a watcher that falls
// behind catches up from the bus's recent events or from the store.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "elexirion/v1/jobs.pb.h"

namespace elexirion::jobs {

// Thread safe. After Unsubscribe() returns, the callback is never called again.
//
// Publish() only appends the event to its job's in-memory log and wakes the bus's dispatch
// thread, which hands each watcher the job's new events in one call (so a watcher that is
// behind gets a batch, not a call per event). Callbacks run on the dispatch thread, each under
// its subscription's own lock: they must not block (a callback that waits would delay every
// other watcher, though never a publisher). Events are shared, immutable and never copied per
// watcher.
//
// Per job the bus keeps the last `retained_events` events with consecutive sequence numbers,
// and drops a published event whose seq is not above the job's last one: the same event may
// be published by the local worker and by the cross-replica relay, and watchers see it once.
// A job keeps its events while nobody watches it too (up to `max_unwatched_jobs` such jobs,
// the least recently published dropped first), until its terminal event: watchers that join
// a running job, often hundreds at once, then replay it from memory instead of each reading
// the store.
class JobEventBus {
 public:
  using EventPtr = std::shared_ptr<const v1::ProgressEvent>;
  // New events of the job, ascending by seq; not necessarily contiguous with what the watcher
  // has (it may have joined in between, or the bus may have skipped ahead).
  using Callback = std::function<void(absl::Span<const EventPtr> events)>;

  struct Options {
    // Recent events kept in memory per job, for watchers joining or catching up.
    size_t retained_events = 1024;
    // Jobs without watchers whose recent events are kept (running jobs, mostly: a job's
    // terminal event ends it). Bounds memory at about this x retained_events events.
    size_t max_unwatched_jobs = 64;
  };

  JobEventBus() : JobEventBus(Options()) {}
  explicit JobEventBus(Options options);
  // Stops the dispatch thread (undelivered events are dropped: watchers are gone by then).
  ~JobEventBus();
  JobEventBus(const JobEventBus&) = delete;
  JobEventBus& operator=(const JobEventBus&) = delete;

  int64_t Subscribe(const std::string& job_id, Callback callback);
  void Unsubscribe(int64_t token);
  // Events of a job nobody watches are only kept for Recent() (the store has them all), and
  // only with `keep_unwatched`: the cross-replica relay publishes a job only while it is
  // watched here, so what it published goes stale once the last watcher leaves.
  void Publish(const v1::ProgressEvent& event, bool keep_unwatched = true);

  // The retained events of `job_id` after `after_seq` (at most `max`), when memory holds the
  // event after_seq + 1; otherwise nothing and *complete = false (read the store).
  std::vector<EventPtr> Recent(const std::string& job_id, int64_t after_seq, size_t max,
                               bool* complete) const;
  // Highest seq published for the job since it has watchers here (0: none).
  int64_t LastPublishedSeq(const std::string& job_id) const;
  bool IsWatched(const std::string& job_id) const;
  // Jobs with at least one watcher here.
  std::vector<std::string> WatchedJobs() const;
  int subscribers() const;
  // Waits until everything published before the call has been handed to the callbacks.
  void Flush();

 private:
  struct Subscription {
    explicit Subscription(Callback cb) : callback(std::move(cb)) {}
    const Callback callback;
    // Held while the callback runs.
    absl::Mutex mu;
    bool active ABSL_GUARDED_BY(mu) = true;
  };
  struct Channel {
    std::deque<EventPtr> recent;  // consecutive seqs, newest last
    // Published, not yet handed to the dispatch thread (at most retained_events: a stuck
    // dispatch thread costs bounded memory; watchers then catch up from the store).
    std::deque<EventPtr> undispatched;
    int64_t last_seq = 0;      // highest published
    int64_t published_at = 0;  // value of publish_clock_ at the last publish: eviction order
    bool ended = false;        // its terminal event was published
    bool kept = false;         // published with keep_unwatched (by this replica's worker)
    bool dirty = false;        // listed in dirty_
    std::map<int64_t, std::shared_ptr<Subscription>> subscribers;
  };
  void DispatchLoop();
  // Drops channels without watchers beyond max_unwatched_jobs, least recently published first.
  void EvictUnwatched() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  mutable absl::Mutex mu_;
  int64_t next_token_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<std::string, Channel> channels_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, std::string> job_of_ ABSL_GUARDED_BY(mu_);  // token -> job
  std::vector<std::string> dirty_ ABSL_GUARDED_BY(mu_);
  int64_t published_ ABSL_GUARDED_BY(mu_) = 0;  // events accepted for watchers
  int64_t publish_clock_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t delivered_ ABSL_GUARDED_BY(mu_) = 0;  // of those, handed to callbacks
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread dispatcher_;
};

// True for a state change into SUCCEEDED, FAILED or CANCELLED: the job's last event.
bool IsTerminalEvent(const v1::ProgressEvent& event);

}  // namespace elexirion::jobs
