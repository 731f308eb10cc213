#include "server/jobs/provider_outage.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/llm/errors.h"

namespace elexirion::jobs {
namespace {

// Waiting calls re-check their own cancellation and deadline at least this often.
constexpr absl::Duration kPoll = absl::Milliseconds(200);

}  // namespace

ProviderOutageGate::ProviderOutageGate(Options options) : options_(std::move(options)) {}

std::optional<absl::Status> ProviderOutageGate::failure() const {
  absl::MutexLock lock(&mu_);
  return failure_;
}

absl::Status ProviderOutageGate::GaveUpStatus() const {
  // CANCELLED makes the optimizer stop at once instead of counting one error per example;
  // the runner fails the job with failure() afterwards.
  return absl::CancelledError(failure_->message());
}

absl::Status ProviderOutageGate::AwaitTurn(const llm::CallOptions& options, bool* probe) {
  *probe = false;
  absl::MutexLock lock(&mu_);
  while (true) {
    if (failure_.has_value()) return GaveUpStatus();
    if (!paused_) return absl::OkStatus();
    const absl::Time now = absl::Now();
    if (options.cancel != nullptr && options.cancel->IsCancelled()) {
      return llm::CancelledError(absl::StrCat("cancelled: ", options.cancel->reason()));
    }
    if (now >= options.deadline) {
      return llm::DeadlineError(
          absl::StrCat("deadline exceeded while waiting for the provider; last error: ", reason_));
    }
    if (!probing_ && now >= next_probe_) {
      probing_ = true;
      *probe = true;
      return absl::OkStatus();
    }
    absl::Duration wait = kPoll;
    if (!probing_) wait = std::min(wait, next_probe_ - now);
    wait = std::min(wait, options.deadline - now);
    changed_.WaitWithTimeout(&mu_, std::max(wait, absl::Milliseconds(1)));
  }
}

absl::StatusOr<llm::LlmResponse> ProviderOutageGate::Complete(const llm::LlmRequest& request,
                                                              const llm::CallOptions& options) {
  while (true) {
    bool probe = false;
    absl::Status turn = AwaitTurn(options, &probe);
    if (!turn.ok()) return turn;
    absl::StatusOr<llm::LlmResponse> result = options_.client->Complete(request, options);
    const bool unavailable = !result.ok() && llm::IsProviderUnavailable(result.status());
    {
      // Observers are called under the lock: a pause and its end reach them in order. They
      // run only at the transitions, so holding the lock for an event write costs nothing.
      absl::MutexLock lock(&mu_);
      if (probe) probing_ = false;
      const absl::Time now = absl::Now();
      if (!unavailable) {
        // Any answer (even an error the provider sent about this request) means the
        // provider is back.
        if (paused_) {
          paused_ = false;
          if (options_.on_resume) options_.on_resume(since_, now - since_);
        }
        changed_.SignalAll();
        return result;
      }
      if (failure_.has_value()) return GaveUpStatus();
      reason_ = std::string(result.status().message());
      bool schedule = probe;
      if (!paused_) {
        paused_ = true;
        since_ = now;
        probes_ = 0;
        schedule = true;
      } else if (probe) {
        ++probes_;
      }
      if (now - since_ >= options_.max_outage) {
        failure_ = absl::UnavailableError(
            absl::StrCat("provider unavailable for ",
                         absl::FormatDuration(absl::Trunc(now - since_, absl::Seconds(1))),
                         ", longer than jobs.max_provider_outage (",
                         absl::FormatDuration(options_.max_outage), "); last error: ", reason_));
        changed_.SignalAll();
        return GaveUpStatus();
      }
      if (schedule) {
        absl::Duration interval = options_.first_probe;
        for (int i = 0; i < probes_ && interval < options_.max_probe_interval; ++i) interval *= 2;
        absl::Time next = now + std::min(interval, options_.max_probe_interval);
        // Never before the provider (or the router's cooldown) said it would answer.
        if (std::optional<absl::Time> until = llm::RateLimitedUntil(result.status())) {
          next = std::max(next, *until);
        }
        if (std::optional<absl::Duration> hint = llm::RetryAfterHint(result.status())) {
          next = std::max(next, now + *hint);
        }
        next_probe_ = std::min(next, since_ + options_.max_outage);
        changed_.SignalAll();
        if (options_.on_wait) {
          options_.on_wait(
              Wait{reason_, since_, next_probe_, since_ + options_.max_outage, probes_});
        }
      }
    }
  }
}

}  // namespace elexirion::jobs
