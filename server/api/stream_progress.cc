#include "server/api/stream_progress.h"

#include <type_traits>

#include "server/api/grpc_status.h"
#include "server/common/logging.h"
#include "server/jobs/worker_pool.h"

namespace elexirion::api {

template <typename Response>
ProgressStreamReactor<Response>::ProgressStreamReactor(store::Store* store, jobs::JobEventBus* bus,
                                                       std::string job_id, int64_t after_seq,
                                                       int64_t stored_seq, bool ended,
                                                       Admission::Ticket ticket)
    : metrics_(std::is_same_v<Response, v1::ProgressEvent> ? kStreamProgressMethod
                                                           : kStreamProgressBatchesMethod),
      store_(store),
      bus_(bus),
      job_id_(std::move(job_id)),
      ticket_(std::move(ticket)),
      last_queued_seq_(after_seq),
      stored_seq_(stored_seq),
      ended_(ended) {
  // Subscribe before the first read from the store so nothing falls between the two.
  subscription_ = bus_->Subscribe(
      job_id_,
      [this](absl::Span<const jobs::JobEventBus::EventPtr> events) { OnLiveEvents(events); });
  absl::MutexLock lock(&mu_);
  Pump();
}

template <typename Response>
void ProgressStreamReactor<Response>::OnLiveEvents(
    absl::Span<const jobs::JobEventBus::EventPtr> events) {
  absl::MutexLock lock(&mu_);
  if (finished_ || !first_read_done_) return;
  for (const auto& event : events) {
    if (event->seq() <= last_queued_seq_) continue;
    if (need_catch_up_ || event->seq() != last_queued_seq_ + 1 || pending_.size() >= kMaxBuffered) {
      need_catch_up_ = true;  // memory or the store has it; read it when we get to it
      break;
    }
    pending_.push_back(event);
    last_queued_seq_ = event->seq();
  }
  Pump();
}

template <typename Response>
void ProgressStreamReactor<Response>::CatchUp() {
  need_catch_up_ = false;
  // Memory answers when it holds the next event and every one after it published so far
  // (later ones come live: the subscription came first), and reaches as far as the store did
  // when the stream started (or a full page, more to follow).
  bool complete = false;
  auto events = bus_->Recent(job_id_, last_queued_seq_, kMaxBuffered, &complete);
  complete = complete && !events.empty() &&
             (events.size() >= kMaxBuffered || events.back()->seq() >= stored_seq_);
  if (complete) {
    for (auto& event : events) {
      last_queued_seq_ = event->seq();
      pending_.push_back(std::move(event));
    }
    if (events.size() >= kMaxBuffered) need_catch_up_ = true;
  } else {
    ReadStore();
  }
  first_read_done_ = true;
}

template <typename Response>
void ProgressStreamReactor<Response>::ReadStore() {
  auto events = store_->ListJobEvents(job_id_, last_queued_seq_, kMaxBuffered);
  if (!events.ok()) {
    FinishOnce(ToGrpcStatus(events.status()));
    return;
  }
  for (const auto& record : *events) {
    auto event = jobs::EventFromRecord(record);
    if (!event.ok()) {
      FinishOnce(ToGrpcStatus(event.status()));
      return;
    }
    pending_.push_back(std::make_shared<const v1::ProgressEvent>(*std::move(event)));
    last_queued_seq_ = record.seq;
  }
  // A full page may have more behind it.
  if (events->size() >= kMaxBuffered) need_catch_up_ = true;
}

template <typename Response>
void ProgressStreamReactor<Response>::Pump() {
  if (finished_ || writing_) return;
  if (pending_.empty() && need_catch_up_) CatchUp();
  if (finished_) return;
  if (!pending_.empty()) {
    WriteNext();
    return;
  }
  // Done after the terminal event, or when the job had ended before the caller's sequence
  // number (nothing left to send).
  if (terminal_sent_ || (ended_ && last_queued_seq_ >= stored_seq_)) {
    FinishOnce(grpc::Status::OK);
  }
}

template <>
void ProgressStreamReactor<v1::ProgressEvent>::WriteNext() {
  in_flight_ = std::move(pending_.front());
  pending_.pop_front();
  writing_ = true;
  if (jobs::IsTerminalEvent(*in_flight_)) terminal_sent_ = true;
  this->StartWrite(in_flight_.get());
}

template <>
void ProgressStreamReactor<v1::ProgressEventBatch>::WriteNext() {
  batch_.Clear();
  size_t bytes = 0;
  while (!pending_.empty() && static_cast<size_t>(batch_.events_size()) < kMaxBatchEvents &&
         (batch_.events_size() == 0 || bytes < kMaxBatchBytes)) {
    const v1::ProgressEvent& event = *pending_.front();
    bytes += event.ByteSizeLong();
    *batch_.add_events() = event;
    if (jobs::IsTerminalEvent(event)) terminal_sent_ = true;
    pending_.pop_front();
  }
  writing_ = true;
  this->StartWrite(&batch_);
}

template <typename Response>
void ProgressStreamReactor<Response>::OnWriteDone(bool ok) {
  absl::MutexLock lock(&mu_);
  writing_ = false;
  in_flight_.reset();
  batch_.Clear();
  if (!ok) {
    FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "stream closed"));
    return;
  }
  Pump();
}

template <typename Response>
void ProgressStreamReactor<Response>::FinishOnce(const grpc::Status& status) {
  if (finished_) return;
  finished_ = true;
  metrics_.Finishing(status);
  this->Finish(status);
}

template <typename Response>
void ProgressStreamReactor<Response>::OnCancel() {
  absl::MutexLock lock(&mu_);
  if (!writing_) FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
}

template <typename Response>
void ProgressStreamReactor<Response>::OnDone() {
  metrics_.Record();
  bus_->Unsubscribe(subscription_);
  delete this;
}

template class ProgressStreamReactor<v1::ProgressEvent>;
template class ProgressStreamReactor<v1::ProgressEventBatch>;

}  // namespace elexirion::api
