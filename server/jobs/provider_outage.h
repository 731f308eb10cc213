// A job's LlmClient that turns a provider outage into a pause instead of failed examples.
//
// The optimizer counts failed calls against max_errors. That is right for bad outputs and
// metric errors, but it turned a 20 s provider outage into a FAILED job with all its work
// lost. Wrapped around the job's client, this class makes the job wait instead:
//   - a call failing with a provider-unavailable error (llm::IsProviderUnavailable: connect
//     errors, 5xx, 429, rate-limited-until, cooldown, after the router's own retries) pauses
//     the job and does not return; the job's other calls finish what they were doing and
//     then wait too, without calling the provider;
//   - one waiting call probes the provider (repeats its own request) at growing intervals
//     (first_probe, doubled per failed probe up to max_probe_interval, and never before a
//     rate-limited-until or cooldown hint);
//   - the first answer resumes every waiting call where it stopped: nothing finished is
//     thrown away or sent again;
//   - after max_outage without an answer the job fails: every call returns at once (code
//     CANCELLED, so the optimizer stops instead of counting errors) and failure() carries
//     the message the runner fails the job with.
// Limitation: a single request that keeps failing with a retryable error while others
// succeed (say a provider 500 on one prompt) looks like an outage: it pauses the job again
// each time, other calls resume it, and once it is the last call left the job fails after
// max_outage instead of counting it as one failed example.
// A call's own deadline and cancellation end its wait (DEADLINE_EXCEEDED / CANCELLED), so
// the job's deadline and CancelJob work while paused. Waiting threads block on a condition
// variable; the worker's lease heartbeat runs on its own thread meanwhile.
// Thread safe.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/llm/llm_client.h"

namespace elexirion::jobs {

class ProviderOutageGate final : public llm::LlmClient {
 public:
  // A pause as observers see it.
  struct Wait {
    std::string reason;  // the provider's last error (no keys: llm errors are scrubbed)
    absl::Time since;
    absl::Time next_probe;
    absl::Time give_up_at;  // since + max_outage
    int probes = 0;         // failed probes so far
  };

  struct Options {
    // The job's client (not owned).
    llm::LlmClient* client = nullptr;
    // jobs.max_provider_outage: how long the provider may stay unavailable.
    absl::Duration max_outage = absl::Minutes(15);
    absl::Duration first_probe = absl::Seconds(1);
    absl::Duration max_probe_interval = absl::Seconds(30);
    // Called (outside the lock) when a pause starts and after each failed probe.
    std::function<void(const Wait&)> on_wait;
    // Called when a probe is answered: the pause that started at `since` is over.
    std::function<void(absl::Time since, absl::Duration waited)> on_resume;
  };

  explicit ProviderOutageGate(Options options);

  absl::StatusOr<llm::LlmResponse> Complete(const llm::LlmRequest& request,
                                            const llm::CallOptions& options) override;

  // Set once the outage outlasted max_outage: the error to fail the job with.
  std::optional<absl::Status> failure() const;

 private:
  // Blocks while paused. OK when the caller may call the provider (`*probe` true when its
  // call is the probe); else the status the call ends with.
  absl::Status AwaitTurn(const llm::CallOptions& options, bool* probe);
  // The status for every call once the job gave up.
  absl::Status GaveUpStatus() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  mutable absl::Mutex mu_;
  absl::CondVar changed_;
  bool paused_ ABSL_GUARDED_BY(mu_) = false;
  bool probing_ ABSL_GUARDED_BY(mu_) = false;  // a probe call is out
  absl::Time since_ ABSL_GUARDED_BY(mu_);
  absl::Time next_probe_ ABSL_GUARDED_BY(mu_);
  int probes_ ABSL_GUARDED_BY(mu_) = 0;
  std::string reason_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> failure_ ABSL_GUARDED_BY(mu_);
};

}  // namespace elexirion::jobs
