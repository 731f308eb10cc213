// StreamProgress and StreamProgressBatches: replay a job's persisted events after the
// caller's sequence number, then follow live events until the job's terminal state change
// has been sent.
//
// Live events arrive in batches from the JobEventBus's dispatch thread into a bounded buffer of
// shared events; when a watcher falls behind (buffer full, or a gap in sequence numbers) it
// drops what it was handed and catches up from the bus's recent events, or from the store
// when memory no longer reaches back far enough, so a slow watcher costs the job and the
// other watchers nothing and misses nothing. Store reads happen on gRPC threads (start,
// write completions), only exceptionally on the dispatch thread. One write is in flight at a
// time; the reactor deletes itself when the RPC is done.
#pragma once

#include <deque>

#include "absl/synchronization/mutex.h"
#include "elexirion/v1/jobs.pb.h"
#include "grpcpp/grpcpp.h"
#include "server/api/admission.h"
#include "server/api/metrics_interceptor.h"
#include "server/jobs/event_bus.h"
#include "server/store/store.h"

namespace elexirion::api {

// `Response` is v1::ProgressEvent (StreamProgress: one event per write) or
// v1::ProgressEventBatch (StreamProgressBatches: every event ready when the previous write
// completes, up to kMaxBatchEvents / kMaxBatchBytes per write).
template <typename Response>
class ProgressStreamReactor final : public grpc::ServerWriteReactor<Response> {
 public:
  // Live events buffered per watcher before it switches to catching up from the store.
  static constexpr size_t kMaxBuffered = 256;
  static constexpr size_t kMaxBatchEvents = kMaxBuffered;
  static constexpr size_t kMaxBatchBytes = 1 << 20;

  // Starts streaming at once. `stored_seq` is the job's last event in the store when the
  // stream started, `ended` whether the job had ended then (so that event is its last).
  // `ticket` holds the watcher's admission slot.
  ProgressStreamReactor(store::Store* store, jobs::JobEventBus* bus, std::string job_id,
                        int64_t after_seq, int64_t stored_seq, bool ended,
                        Admission::Ticket ticket);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  void OnLiveEvents(absl::Span<const jobs::JobEventBus::EventPtr> events);
  // Starts the next write, or finishes after the terminal event. Caller holds mu_.
  void Pump() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves the next pending event(s) into the write buffer and starts the write.
  void WriteNext() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reads events after last_queued_seq_ into pending_: from the bus's memory when it holds
  // them, else from the store.
  void CatchUp() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReadStore() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishOnce(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  StreamRpcRecorder metrics_;
  store::Store* const store_;
  jobs::JobEventBus* const bus_;
  const std::string job_id_;
  Admission::Ticket ticket_;
  int64_t subscription_ = 0;

  absl::Mutex mu_;
  std::deque<jobs::JobEventBus::EventPtr> pending_ ABSL_GUARDED_BY(mu_);
  // Single events: shared with the bus and other watchers, alive until the write completes.
  jobs::JobEventBus::EventPtr in_flight_ ABSL_GUARDED_BY(mu_);
  // Batches: this watcher's message being written.
  v1::ProgressEventBatch batch_ ABSL_GUARDED_BY(mu_);
  int64_t last_queued_seq_ ABSL_GUARDED_BY(mu_);
  // Memory that does not reach this far is behind the store (the job moved to another
  // replica, whose events only the relay brings here): read the store instead.
  const int64_t stored_seq_;
  const bool ended_;
  bool need_catch_up_ ABSL_GUARDED_BY(mu_) = true;
  // Live events before the first read are in that read (published means persisted, and
  // memory has what was published).
  bool first_read_done_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool terminal_sent_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

using StreamProgressReactor = ProgressStreamReactor<v1::ProgressEvent>;
using StreamProgressBatchesReactor = ProgressStreamReactor<v1::ProgressEventBatch>;

}  // namespace elexirion::api
