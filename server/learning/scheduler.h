// The continuous-learning scheduler: turns each configured pipeline's policy into ordinary
// optimization jobs (daily light run when should_optimize holds, weekly full run that also
// refreshes the baseline) and processes recent feedback every feedback_interval.
//
// Exactly once per slot, across restarts and replicas, without a leader: for each due slot
// the scheduler (1) skips it when the store already has it claimed, (2) decides, (3) submits
// with a request_id derived from the slot, so a second submission of the same slot (another
// replica, or a restart after a crash between submit and claim) returns the first job instead
// of creating one, and (4) claims the slot with the outcome (TryClaimScheduleSlot has exactly
// one winner). A retryable submit error leaves the slot unclaimed for the next tick; a
// permanent one claims it as "failed: ...".
//
// Due windows (schedule_slots.h): a daily slot from its time of day to the end of that local
// day; a weekly slot for Options::weekly_catch_up after its time; feedback slots are fixed
// intervals from the epoch. Feedback and prune slots are claimed BEFORE they act (reporting
// usage and pruning have no idempotency key), so each happens once per slot across replicas:
// only the winning replica's on_usage sees a given slot.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "elexirion/v1/jobs.pb.h"
#include "server/common/clock.h"
#include "server/learning/policy.h"
#include "server/learning/usage.h"
#include "server/store/store.h"

namespace elexirion::learning {

// Submits an optimization job; returns its id. The app passes the validated OptimizeModule
// path, so a scheduled run is listed and streamed like any other job and is idempotent on
// request_id. Errors: UNAVAILABLE / RESOURCE_EXHAUSTED / ABORTED / DEADLINE_EXCEEDED are
// retried on the next tick, anything else fails the slot.
using SubmitFn = std::function<absl::StatusOr<std::string>(const v1::OptimizeModuleRequest&)>;
// Receives the fresh 24 h usage of a pipeline once per feedback slot.
using UsageFn = std::function<void(const UsageStats&)>;

// Schedule names in the store, and the request_id of a slot's run.
std::string ScheduleName(const std::string& pipeline, const std::string& kind);
std::string RunRequestId(const std::string& pipeline, const std::string& kind,
                         const std::string& slot_key);
// The global schedule of execution pruning (one prune per slot, whichever replica wins).
inline constexpr char kPruneSchedule[] = "learning/feedback/prune";

// Thread safe. RunDue calls on one object are serialized; several objects (replicas) may run
// concurrently against one database.
class LearningScheduler {
 public:
  struct Options {
    // Required; must outlive the scheduler.
    store::Store* store = nullptr;
    // Source of "now" for Start()'s loop. nullptr = Clock::Real().
    Clock* clock = nullptr;
    LearningConfig config;
    // Replica id recorded as the owner of the slots this scheduler claims. Required.
    std::string owner;
    // Required.
    SubmitFn submit;
    // Optional.
    UsageFn on_usage;
    // A weekly slot not handled within this long after its time is skipped (see
    // WeeklySlot). Daily slots are due until the end of their local day.
    absl::Duration weekly_catch_up = absl::Hours(24);
    // Executions deleted per PruneExecutions call (short write transactions)...
    int prune_chunk = 1000;
    // ...and at most this many calls per prune slot; the rest waits for the next slot.
    int max_prune_chunks = 100;
  };

  static absl::StatusOr<std::unique_ptr<LearningScheduler>> Create(Options options);
  ~LearningScheduler();
  LearningScheduler(const LearningScheduler&) = delete;
  LearningScheduler& operator=(const LearningScheduler&) = delete;

  // Starts a thread calling RunDue(clock->Now()) now and then every config.tick of real time.
  // FAILED_PRECONDITION when already started.
  absl::Status Start();
  // Stops and joins the thread (promptly: the wait between ticks is interruptible). An
  // in-flight RunDue finishes first. Idempotent.
  void Stop();

  // Handles every slot due at `now` for every configured pipeline, plus the prune slot.
  // Errors are logged and counted, never returned: one pipeline's trouble must not stop the
  // others' schedules.
  void RunDue(absl::Time now);

 private:
  explicit LearningScheduler(Options options);

  void RunDaily(const PipelinePolicy& policy, absl::Time now);
  void RunWeekly(const PipelinePolicy& policy, absl::Time now);
  void RunFeedback(const PipelinePolicy& policy, absl::Time now);
  void RunPrune(absl::Time now);
  struct SubmitResult {
    // What the slot is claimed with: "submitted: job <id>" or "failed: <message>".
    std::string outcome;
    // kOutcomeSubmitted, kOutcomeFailed or kOutcomeRetry (then the slot stays unclaimed).
    std::string metric_outcome;
  };
  // Shared by daily and weekly: builds the slot's request and submits it.
  SubmitResult Submit(const PipelinePolicy& policy, const SchedulePolicy& schedule,
                      const std::string& kind, const std::string& slot_key);
  // True when the slot is already claimed, or its state is unknown (store error: try again
  // on the next tick).
  bool AlreadyClaimed(const std::string& schedule, const std::string& slot_key,
                      const std::string& metric_schedule);
  // Claims the slot with `outcome`; false when another replica won it or the store failed
  // (then the slot is handled again on the next tick).
  bool Claim(const std::string& schedule, const std::string& slot_key, const std::string& outcome,
             absl::Time now);
  void Loop();

  const Options options_;
  Clock* const clock_;
  absl::Duration prune_interval_;

  // Serializes RunDue on this object (the loop and a test or admin call).
  absl::Mutex run_mu_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace elexirion::learning
