#include "server/learning/scheduler.h"

#include <algorithm>
#include <exception>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/common/logging.h"
#include "server/learning/learning_metrics.h"
#include "server/learning/schedule_slots.h"

namespace elexirion::learning {
namespace {

constexpr char kDaily[] = "daily";
constexpr char kWeekly[] = "weekly";
constexpr char kFeedback[] = "feedback";
constexpr char kPrune[] = "prune";

// The design document's windows: the last day for decisions and feedback, the last week for
// the weekly baseline.
constexpr absl::Duration kDailyWindow = absl::Hours(24);
constexpr absl::Duration kWeeklyWindow = absl::Hours(24 * 7);

// Transient conditions of the submit path (database busy, job backlog full): the slot is
// worth another try on the next tick. Anything else would fail the same way again.
bool IsRetryable(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsResourceExhausted(status) ||
         absl::IsAborted(status) || absl::IsDeadlineExceeded(status);
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime(absl::RFC3339_sec, t, absl::UTCTimeZone());
}

}  // namespace

std::string ScheduleName(const std::string& pipeline, const std::string& kind) {
  return absl::StrCat("learning/", pipeline, "/", kind);
}

std::string RunRequestId(const std::string& pipeline, const std::string& kind,
                         const std::string& slot_key) {
  return absl::StrCat("learning:", pipeline, ":", kind, ":", slot_key);
}

absl::StatusOr<std::unique_ptr<LearningScheduler>> LearningScheduler::Create(Options options) {
  if (options.store == nullptr) return absl::InvalidArgumentError("store: required");
  if (options.owner.empty()) return absl::InvalidArgumentError("owner: required");
  if (!options.submit) return absl::InvalidArgumentError("submit: required");
  if (options.config.tick <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("learning.tick: must be positive");
  }
  if (options.config.execution_retention <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("learning.execution_retention: must be positive");
  }
  if (options.weekly_catch_up <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("weekly_catch_up: must be positive");
  }
  if (options.prune_chunk < 1 || options.max_prune_chunks < 1) {
    return absl::InvalidArgumentError("prune_chunk, max_prune_chunks: must be at least 1");
  }
  for (const auto& [name, policy] : options.config.pipelines) {
    if (policy.feedback_interval <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(
          absl::StrCat("learning.pipelines.", name, ".feedback_interval: must be positive"));
    }
  }
  InitLearningMetrics();
  return std::unique_ptr<LearningScheduler>(new LearningScheduler(std::move(options)));
}

LearningScheduler::LearningScheduler(Options options)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : Clock::Real()),
      prune_interval_(absl::Minutes(10)) {
  // Pruning follows the most frequent feedback schedule; executions are recorded for every
  // pipeline, so it runs even when none is configured.
  for (const auto& [name, policy] : options_.config.pipelines) {
    prune_interval_ = std::min(prune_interval_, policy.feedback_interval);
  }
}

LearningScheduler::~LearningScheduler() { Stop(); }

absl::Status LearningScheduler::Start() {
  absl::MutexLock lock(&mu_);
  if (started_) return absl::FailedPreconditionError("learning scheduler already started");
  started_ = true;
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void LearningScheduler::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void LearningScheduler::Loop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    RunDue(clock_->Now());
    absl::MutexLock lock(&mu_);
    // Real time on purpose: Stop() must not wait for a fake clock to be advanced.
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.config.tick)) return;
  }
}

void LearningScheduler::RunDue(absl::Time now) {
  absl::MutexLock lock(&run_mu_);
  for (const auto& [name, policy] : options_.config.pipelines) {
    if (policy.daily.enabled) RunDaily(policy, now);
    if (policy.weekly.enabled) RunWeekly(policy, now);
    RunFeedback(policy, now);
  }
  RunPrune(now);
}

bool LearningScheduler::AlreadyClaimed(const std::string& schedule, const std::string& slot_key,
                                       const std::string& metric_schedule) {
  auto slot = options_.store->GetScheduleSlot(schedule, slot_key);
  if (!slot.ok()) {
    logging::Warning(
        "learning: reading schedule slot failed; retrying next tick",
        {{"schedule", schedule}, {"slot", slot_key}, {"error", slot.status().ToString()}});
    RecordLearningRun(metric_schedule, kOutcomeRetry);
    return true;
  }
  return slot->has_value();
}

bool LearningScheduler::Claim(const std::string& schedule, const std::string& slot_key,
                              const std::string& outcome, absl::Time now) {
  auto won = options_.store->TryClaimScheduleSlot(schedule, slot_key, options_.owner, outcome, now);
  if (!won.ok()) {
    logging::Warning(
        "learning: claiming schedule slot failed; retrying next tick",
        {{"schedule", schedule}, {"slot", slot_key}, {"error", won.status().ToString()}});
    return false;
  }
  if (!*won) {
    // Another replica decided the same slot first; any job we submitted was the same job
    // (same request_id), so there is nothing to undo.
    logging::Debug("learning: slot claimed by another replica",
                   {{"schedule", schedule}, {"slot", slot_key}});
    return false;
  }
  logging::Info("learning: slot done",
                {{"schedule", schedule}, {"slot", slot_key}, {"outcome", outcome}});
  return true;
}

LearningScheduler::SubmitResult LearningScheduler::Submit(const PipelinePolicy& policy,
                                                          const SchedulePolicy& schedule,
                                                          const std::string& kind,
                                                          const std::string& slot_key) {
  if (!policy.metric.has_value()) {
    return {"failed: no metric configured for scheduled runs", kOutcomeFailed};
  }
  v1::OptimizeModuleRequest request;
  request.set_request_id(RunRequestId(policy.pipeline, kind, slot_key));
  request.mutable_pipeline()->set_name(policy.pipeline);
  request.set_program_name(policy.program);
  request.mutable_trainset()->set_dataset(policy.dataset);
  *request.mutable_metric() = *policy.metric;
  *request.mutable_optimizer() = schedule.optimizer;
  *request.mutable_budget() = policy.budget;
  // A scheduled run must never replace production with something worse.
  request.set_promote_if_better(true);

  absl::StatusOr<std::string> job_id;
  try {
    job_id = options_.submit(request);
  } catch (const std::exception& e) {
    job_id = absl::InternalError(absl::StrCat("submit threw: ", e.what()));
  }
  if (job_id.ok()) return {absl::StrCat("submitted: job ", *job_id), kOutcomeSubmitted};
  if (IsRetryable(job_id.status())) {
    logging::Warning("learning: submitting scheduled run failed; retrying next tick",
                     {{"pipeline", policy.pipeline},
                      {"schedule", kind},
                      {"slot", slot_key},
                      {"error", job_id.status().ToString()}});
    return {"", kOutcomeRetry};
  }
  logging::Error("learning: scheduled run rejected; slot marked failed",
                 {{"pipeline", policy.pipeline},
                  {"schedule", kind},
                  {"slot", slot_key},
                  {"error", job_id.status().ToString()}});
  return {absl::StrCat("failed: ", job_id.status().message()), kOutcomeFailed};
}

void LearningScheduler::RunDaily(const PipelinePolicy& policy, absl::Time now) {
  const std::optional<ScheduleSlot> due =
      DailySlot(now, options_.config.time_zone, policy.daily.hour, policy.daily.minute);
  if (!due.has_value()) return;
  const ScheduleSlot& slot = *due;
  const std::string schedule = ScheduleName(policy.pipeline, kDaily);
  if (AlreadyClaimed(schedule, slot.key, kDaily)) return;

  auto usage = ComputeUsageStats(*options_.store, policy, kDailyWindow, now);
  if (!usage.ok()) {
    logging::Warning("learning: usage statistics failed; retrying next tick",
                     {{"pipeline", policy.pipeline}, {"error", usage.status().ToString()}});
    RecordLearningRun(kDaily, kOutcomeRetry);
    return;
  }
  std::string reason;
  if (!ShouldOptimize(*usage, policy, &reason)) {
    if (Claim(schedule, slot.key, absl::StrCat("skipped: ", reason), now)) {
      RecordLearningRun(kDaily, kOutcomeSkipped);
    }
    return;
  }
  SubmitResult result = Submit(policy, policy.daily, kDaily, slot.key);
  if (result.metric_outcome == kOutcomeRetry) {
    RecordLearningRun(kDaily, kOutcomeRetry);
    return;
  }
  if (Claim(schedule, slot.key, absl::StrCat(result.outcome, " (", reason, ")"), now)) {
    RecordLearningRun(kDaily, result.metric_outcome);
  }
}

void LearningScheduler::RunWeekly(const PipelinePolicy& policy, absl::Time now) {
  const std::optional<ScheduleSlot> due =
      WeeklySlot(now, options_.config.time_zone, policy.weekly.day, policy.weekly.hour,
                 policy.weekly.minute, options_.weekly_catch_up);
  if (!due.has_value()) return;
  const ScheduleSlot& slot = *due;
  const std::string schedule = ScheduleName(policy.pipeline, kWeekly);
  if (AlreadyClaimed(schedule, slot.key, kWeekly)) return;

  auto usage = ComputeUsageStats(*options_.store, policy, kWeeklyWindow, now);
  if (!usage.ok()) {
    logging::Warning("learning: usage statistics failed; retrying next tick",
                     {{"pipeline", policy.pipeline}, {"error", usage.status().ToString()}});
    RecordLearningRun(kWeekly, kOutcomeRetry);
    return;
  }

  // A split into train and validation needs two examples; fewer would fail the job anyway.
  SubmitResult result;
  auto dataset = options_.store->GetDataset(policy.dataset);
  if (absl::IsNotFound(dataset.status())) {
    result = {absl::StrCat("skipped: dataset \"", policy.dataset, "\" does not exist yet"),
              kOutcomeSkipped};
  } else if (!dataset.ok()) {
    logging::Warning("learning: reading dataset failed; retrying next tick",
                     {{"pipeline", policy.pipeline}, {"error", dataset.status().ToString()}});
    RecordLearningRun(kWeekly, kOutcomeRetry);
    return;
  } else if (dataset->example_count < 2) {
    result = {absl::StrCat("skipped: dataset \"", policy.dataset, "\" has ", dataset->example_count,
                           " examples, need at least 2"),
              kOutcomeSkipped};
  } else {
    result = Submit(policy, policy.weekly, kWeekly, slot.key);
    if (result.metric_outcome == kOutcomeRetry) {
      RecordLearningRun(kWeekly, kOutcomeRetry);
      return;
    }
  }

  // The design's update_performance_baselines: the week's figures become what the daily rule
  // defends. A week without executions says nothing, so the old baseline stays. Written
  // before the claim: a crash in between repeats an identical write, never loses it.
  if (usage->summary.executions > 0) {
    store::PipelineBaselineRecord baseline;
    baseline.pipeline_name = policy.pipeline;
    baseline.success_rate = usage->success_rate;
    baseline.mean_quality = usage->summary.mean_quality;
    baseline.executions = usage->summary.executions;
    baseline.updated_at = now;
    absl::Status put = options_.store->PutPipelineBaseline(baseline);
    if (!put.ok()) {
      logging::Warning("learning: storing baseline failed; retrying next tick",
                       {{"pipeline", policy.pipeline}, {"error", put.ToString()}});
      RecordLearningRun(kWeekly, kOutcomeRetry);
      return;
    }
  }
  if (Claim(schedule, slot.key, result.outcome, now)) {
    RecordLearningRun(kWeekly, result.metric_outcome);
  }
}

void LearningScheduler::RunFeedback(const PipelinePolicy& policy, absl::Time now) {
  const ScheduleSlot slot = IntervalSlot(now, policy.feedback_interval);
  const std::string schedule = ScheduleName(policy.pipeline, kFeedback);
  if (AlreadyClaimed(schedule, slot.key, kFeedback)) return;

  auto usage = ComputeUsageStats(*options_.store, policy, kDailyWindow, now);
  if (!usage.ok()) {
    logging::Warning("learning: usage statistics failed; retrying next tick",
                     {{"pipeline", policy.pipeline}, {"error", usage.status().ToString()}});
    RecordLearningRun(kFeedback, kOutcomeRetry);
    return;
  }
  // Claimed before reporting: nothing here is idempotent by key, so the claim alone makes
  // "once per slot" hold across replicas (a crash right after it loses one report, which
  // the next slot replaces).
  const std::string outcome = absl::StrFormat(
      "processed: %d executions, success rate %.4f, %d new examples", usage->summary.executions,
      usage->success_rate, usage->new_examples_since_optimization);
  if (!Claim(schedule, slot.key, outcome, now)) return;
  RecordLearningRun(kFeedback, kOutcomeProcessed);
  if (options_.on_usage) {
    try {
      options_.on_usage(*usage);
    } catch (const std::exception& e) {
      logging::Error("learning: on_usage threw",
                     {{"pipeline", policy.pipeline}, {"error", e.what()}});
    }
  }
}

void LearningScheduler::RunPrune(absl::Time now) {
  const ScheduleSlot slot = IntervalSlot(now, prune_interval_);
  if (AlreadyClaimed(kPruneSchedule, slot.key, kPrune)) return;
  const absl::Time before = now - options_.config.execution_retention;
  // Claimed first so one replica prunes per slot; deleting is idempotent, so a crash midway
  // only leaves rows for the next slot.
  if (!Claim(kPruneSchedule, slot.key, absl::StrCat("prune executions before ", Rfc3339(before)),
             now)) {
    return;
  }
  int64_t deleted = 0;
  for (int chunk = 0; chunk < options_.max_prune_chunks; ++chunk) {
    auto n = options_.store->PruneExecutions(before, options_.prune_chunk);
    if (!n.ok()) {
      logging::Warning("learning: pruning executions failed; the next slot continues",
                       {{"error", n.status().ToString()}});
      RecordLearningRun(kPrune, kOutcomeFailed);
      return;
    }
    deleted += *n;
    if (*n < options_.prune_chunk) break;
  }
  RecordLearningRun(kPrune, kOutcomeProcessed);
  if (deleted > 0) {
    logging::Info("learning: pruned executions",
                  {{"deleted", deleted}, {"before", Rfc3339(before)}});
  }
}

}  // namespace elexirion::learning
