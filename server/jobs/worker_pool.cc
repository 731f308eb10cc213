#include "server/jobs/worker_pool.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "nlohmann/json.hpp"
#include "server/common/logging.h"
#include "server/common/status_macros.h"
#include "server/jobs/jobs_metrics.h"

namespace elexirion::jobs {
namespace {

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  google::protobuf::Timestamp ts;
  const int64_t micros = absl::ToUnixMicros(t);
  ts.set_seconds(micros / 1000000);
  ts.set_nanos(static_cast<int32_t>((micros % 1000000) * 1000));
  return ts;
}

std::string EventKind(const v1::ProgressEvent& event) {
  switch (event.kind_case()) {
    case v1::ProgressEvent::kStateChanged:
      return "state_changed";
    case v1::ProgressEvent::kTrialStarted:
      return "trial_started";
    case v1::ProgressEvent::kTrialFinished:
      return "trial_finished";
    case v1::ProgressEvent::kNewBest:
      return "new_best";
    case v1::ProgressEvent::kBootstrap:
      return "bootstrap";
    case v1::ProgressEvent::kUsage:
      return "usage";
    case v1::ProgressEvent::kSummary:
      return "summary";
    case v1::ProgressEvent::kProviderWait:
      return "provider_wait";
    case v1::ProgressEvent::kProviderResumed:
      return "provider_resumed";
    default:
      return "unknown";
  }
}

v1::JobState ToProtoState(store::JobState state) {
  return static_cast<v1::JobState>(static_cast<int>(state));
}

}  // namespace

v1::Program ProgramProto(const store::ProgramRecord& record) {
  v1::Program program;
  auto scores = nlohmann::json::parse(record.scores_json, nullptr, false);
  if (scores.is_object()) {
    program.mutable_scores()->set_baseline(scores.value("baseline", 0.0));
    program.mutable_scores()->set_validation(scores.value("validation", 0.0));
    program.mutable_scores()->set_train(scores.value("train", 0.0));
    program.mutable_scores()->set_validation_size(scores.value("validation_size", 0));
  }
  program.set_name(record.name);
  program.set_version(record.version);
  program.set_dspy_json(record.dspy_json);
  program.set_optimized_yaml(record.optimized_yaml);
  program.set_optimizer(record.optimizer);
  program.set_job_id(record.job_id);
  program.set_production(record.production);
  program.set_pipeline_name(record.pipeline_name);
  *program.mutable_create_time() = ToTimestamp(record.created_at);
  return program;
}

absl::StatusOr<v1::ProgressEvent> EventFromRecord(const store::JobEventRecord& record) {
  v1::ProgressEvent event;
  if (!event.ParseFromString(record.payload)) {
    return absl::DataLossError(
        absl::StrCat("job ", record.job_id, " event ", record.seq, ": stored payload is corrupt"));
  }
  event.set_job_id(record.job_id);
  event.set_seq(record.seq);
  *event.mutable_time() = ToTimestamp(record.time);
  return event;
}

// The JobContext of one claimed job; also the heartbeat.
class JobWorkerPool::RunningJob final : public JobContext {
 public:
  RunningJob(const Options& options, store::JobRecord job, store::JobLease lease)
      : options_(options), job_(std::move(job)), lease_(std::move(lease)) {}

  absl::Status Init() {
    if (!job_.request.empty() && !request_.ParseFromString(job_.request)) {
      return absl::DataLossError("stored request is corrupt");
    }
    return absl::OkStatus();
  }

  const store::JobRecord& job() const override { return job_; }
  const v1::OptimizeModuleRequest& request() const override { return request_; }
  const CancellationToken& cancel() const override { return cancel_; }
  const std::string& checkpoint() const override { return job_.checkpoint; }

  absl::Status Emit(v1::ProgressEvent event) override {
    const absl::Time now = options_.clock->Now();
    event.clear_seq();
    event.clear_time();
    event.clear_job_id();
    if (event.has_trial_finished()) RecordTrial(job_.optimizer);
    auto seq = options_.store->AppendJobEvent(job_.id, lease_, EventKind(event),
                                              event.SerializeAsString(), now);
    if (!seq.ok()) {
      if (store::IsLeaseLost(seq.status())) LoseLease();
      return seq.status();
    }
    event.set_job_id(job_.id);
    event.set_seq(*seq);
    *event.mutable_time() = ToTimestamp(now);
    options_.bus->Publish(event);
    return absl::OkStatus();
  }

  absl::Status Checkpoint(const std::string& checkpoint, const v1::JobProgress& progress) override {
    absl::Status s =
        options_.store->CheckpointJob(lease_, checkpoint, progress.SerializeAsString());
    if (store::IsLeaseLost(s)) LoseLease();
    return s;
  }

  std::optional<store::ProgramRecord> CurrentProduction() const override {
    auto production = options_.store->GetProductionProgram(request_.program_name());
    if (!production.ok()) return std::nullopt;
    return *production;
  }

  // Heartbeats until Stop(); a pending cancel or a lost lease cancels the token.
  void StartHeartbeat() {
    heartbeat_ = std::thread([this] {
      while (!stop_heartbeat_.WaitForNotificationWithTimeout(options_.heartbeat)) {
        auto result = options_.store->HeartbeatJob(lease_, options_.clock->Now() + options_.lease);
        if (!result.ok()) {
          if (store::IsLeaseLost(result.status())) {
            LoseLease();
            return;
          }
          logging::Warning("heartbeat failed", {{"job_id", job_.id},
                                                {"error", std::string(result.status().message())}});
          continue;
        }
        if (result->cancel_requested) Cancel(Interrupt::kCancelRequested);
      }
    });
  }
  void StopHeartbeat() {
    stop_heartbeat_.Notify();
    if (heartbeat_.joinable()) heartbeat_.join();
  }

  enum class Interrupt { kNone, kCancelRequested, kLeaseLost, kShutdown };
  void Cancel(Interrupt why) {
    {
      absl::MutexLock lock(&mu_);
      if (interrupt_ == Interrupt::kNone || why == Interrupt::kLeaseLost) interrupt_ = why;
    }
    cancel_.Cancel(why == Interrupt::kCancelRequested ? "cancelled"
                   : why == Interrupt::kShutdown      ? "server shutting down"
                                                      : "lease lost");
  }
  Interrupt interrupt() const {
    absl::MutexLock lock(&mu_);
    return interrupt_;
  }
  const store::JobLease& lease() const { return lease_; }

 private:
  void LoseLease() { Cancel(Interrupt::kLeaseLost); }

  const Options& options_;
  store::JobRecord job_;
  store::JobLease lease_;
  v1::OptimizeModuleRequest request_;
  CancellationToken cancel_;
  absl::Notification stop_heartbeat_;
  std::thread heartbeat_;
  mutable absl::Mutex mu_;
  Interrupt interrupt_ ABSL_GUARDED_BY(mu_) = Interrupt::kNone;
};

absl::StatusOr<std::unique_ptr<JobWorkerPool>> JobWorkerPool::Create(Options options) {
  if (options.store == nullptr || options.runner == nullptr || options.bus == nullptr) {
    return absl::InvalidArgumentError("JobWorkerPool: store, runner and bus are required");
  }
  if (options.workers < 1) return absl::InvalidArgumentError("jobs.workers: must be >= 1");
  if (options.heartbeat <= absl::ZeroDuration() || options.heartbeat * 3 > options.lease) {
    return absl::InvalidArgumentError("jobs.heartbeat: must be positive and at most lease / 3");
  }
  if (options.worker_id_prefix.empty()) {
    char host[256] = {0};
    ::gethostname(host, sizeof(host) - 1);
    options.worker_id_prefix = absl::StrCat(host, "-", ::getpid());
  }
  InitJobsMetrics();
  return std::unique_ptr<JobWorkerPool>(new JobWorkerPool(std::move(options)));
}

JobWorkerPool::~JobWorkerPool() { Stop(); }

void JobWorkerPool::Start() {
  for (int i = 0; i < options_.workers; ++i) {
    threads_.emplace_back([this, i] { WorkerLoop(i); });
  }
}

void JobWorkerPool::Wake() {
  absl::MutexLock lock(&mu_);
  ++wakeups_;
}

void JobWorkerPool::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    for (RunningJob* job : running_) job->Cancel(RunningJob::Interrupt::kShutdown);
  }
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void JobWorkerPool::RefreshGauges() {
  auto queued = options_.store->CountJobs({store::JobState::kQueued});
  auto running = options_.store->CountJobs({store::JobState::kRunning});
  if (queued.ok() && running.ok()) SetJobCounts(*queued, *running);
}

void JobWorkerPool::WorkerLoop(int index) {
  const std::string worker_id = absl::StrCat(options_.worker_id_prefix, "-w", index);
  int64_t seen_wakeups = 0;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      seen_wakeups = wakeups_;
    }
    if (index == 0) RefreshGauges();
    auto claimed = options_.store->ClaimJob(worker_id, options_.lease, options_.clock->Now());
    if (!claimed.ok()) {
      logging::Warning("claiming a job failed",
                       {{"error", std::string(claimed.status().message())}});
    } else if (claimed->has_value()) {
      RunJob(worker_id, std::move(**claimed));
      continue;
    }
    absl::MutexLock lock(&mu_);
    auto woken = [this, seen_wakeups]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopping_ || wakeups_ != seen_wakeups;
    };
    mu_.AwaitWithTimeout(absl::Condition(&woken), options_.poll);
  }
}

void JobWorkerPool::RunJob(const std::string& worker_id, store::JobRecord job) {
  store::JobLease lease{job.id, worker_id, job.attempt};
  RunningJob running(options_, job, lease);
  const absl::Time started = options_.clock->Now();
  const std::string optimizer = job.optimizer;
  auto finish = [&](store::JobState state, v1::EndReason reason, const std::string& error,
                    const std::string& result, const std::optional<v1::JobProgress>& progress,
                    const std::string& message) {
    v1::ProgressEvent terminal;
    terminal.mutable_state_changed()->set_state(ToProtoState(state));
    terminal.mutable_state_changed()->set_end_reason(reason);
    terminal.mutable_state_changed()->set_message(message);
    store::JobOutcome outcome;
    outcome.state = state;
    outcome.result = result;
    outcome.end_reason = v1::EndReason_Name(reason);
    outcome.error = error;
    if (progress.has_value()) outcome.progress = progress->SerializeAsString();
    outcome.event = store::NewJobEvent{"state_changed", terminal.SerializeAsString()};
    const absl::Time now = options_.clock->Now();
    auto ended = options_.store->FinishJob(lease, outcome, now);
    if (!ended.ok()) {
      logging::Warning("could not finish job",
                       {{"job_id", job.id}, {"error", std::string(ended.status().message())}});
      return;
    }
    terminal.set_job_id(job.id);
    terminal.set_seq(ended->last_event_seq);
    *terminal.mutable_time() = ToTimestamp(now);
    options_.bus->Publish(terminal);
    RecordJobFinished(optimizer, v1::EndReason_Name(reason), absl::ToDoubleSeconds(now - started));
    logging::Info("job ended", {{"job_id", job.id},
                                {"state", store::JobStateName(state)},
                                {"end_reason", v1::EndReason_Name(reason)},
                                {"attempt", job.attempt}});
  };

  if (absl::Status s = running.Init(); !s.ok()) {
    finish(store::JobState::kFailed, v1::END_REASON_ERROR, std::string(s.message()), "",
           std::nullopt, "failed");
    return;
  }
  if (job.cancel_requested) {
    finish(store::JobState::kCancelled, v1::END_REASON_CANCELLED, "", job.result, std::nullopt,
           "cancelled");
    return;
  }
  if (job.attempt > options_.max_attempts) {
    finish(store::JobState::kFailed, v1::END_REASON_ERROR,
           absl::StrCat("gave up after ", job.attempt - 1, " attempts"), "", std::nullopt,
           "failed");
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      (void)options_.store->ReleaseJob(lease, options_.clock->Now(), "server shutting down",
                                       options_.clock->Now());
      return;
    }
    running_.push_back(&running);
  }
  logging::Info("job started",
                {{"job_id", job.id}, {"attempt", job.attempt}, {"worker", worker_id}});
  if (job.last_event_seq == 1) {
    // The bus then holds the job from its first event, so watchers who join while it runs
    // (often many at once) replay it from memory instead of each reading the store. Read
    // back, not rebuilt: memory must hold exactly what the store has.
    auto first = options_.store->ListJobEvents(job.id, 0, 1);
    if (first.ok() && first->size() == 1) {
      auto queued = EventFromRecord(first->front());
      if (queued.ok()) options_.bus->Publish(*queued);
    }
  }
  v1::ProgressEvent started_event;
  started_event.mutable_state_changed()->set_state(v1::JOB_STATE_RUNNING);
  started_event.mutable_state_changed()->set_message(
      job.attempt > 1 ? absl::StrCat("resumed (attempt ", job.attempt, ")") : "started");
  (void)running.Emit(started_event);

  running.StartHeartbeat();
  absl::StatusOr<RunOutcome> outcome = options_.runner->Run(running);
  running.StopHeartbeat();
  {
    absl::MutexLock lock(&mu_);
    running_.erase(std::find(running_.begin(), running_.end(), &running));
  }

  switch (running.interrupt()) {
    case RunningJob::Interrupt::kLeaseLost:
      logging::Warning("job lease lost: dropping its results", {{"job_id", job.id}});
      return;
    case RunningJob::Interrupt::kShutdown: {
      auto released = options_.store->ReleaseJob(
          lease, options_.clock->Now(), "interrupted by server shutdown", options_.clock->Now());
      if (released.ok()) {
        logging::Info("job released for resumption", {{"job_id", job.id}});
      }
      return;
    }
    default:
      break;
  }
  if (!outcome.ok()) {
    finish(store::JobState::kFailed, v1::END_REASON_ERROR, std::string(outcome.status().message()),
           "", std::nullopt, "failed");
    return;
  }
  if (running.interrupt() == RunningJob::Interrupt::kCancelRequested) {
    outcome->state = store::JobState::kCancelled;
    outcome->end_reason = v1::END_REASON_CANCELLED;
  }
  std::string result;
  if (outcome->program.has_value()) {
    store::ProgramRecord program = *outcome->program;
    program.name = running.request().program_name();
    program.job_id = job.id;
    program.production = outcome->promote;
    bool existed = false;
    auto saved = options_.store->CreateProgramVersion(program, &existed);
    if (!saved.ok()) {
      finish(store::JobState::kFailed, v1::END_REASON_ERROR,
             absl::StrCat("saving the program failed: ", saved.status().message()), "",
             outcome->progress, "failed");
      return;
    }
    result = ProgramProto(*saved).SerializeAsString();
    outcome->summary.set_program_name(saved->name);
    outcome->summary.set_program_version(saved->version);
    outcome->summary.set_promoted(saved->production);
    SetProgramScore(saved->name, outcome->summary.best_score());
  }
  *outcome->summary.mutable_usage() = outcome->progress.usage();
  v1::ProgressEvent summary;
  *summary.mutable_summary() = outcome->summary;
  (void)running.Emit(summary);
  finish(outcome->state, outcome->end_reason, outcome->error, result, outcome->progress,
         outcome->state == store::JobState::kSucceeded   ? "succeeded"
         : outcome->state == store::JobState::kCancelled ? "cancelled"
                                                         : "failed");
}

}  // namespace elexirion::jobs
