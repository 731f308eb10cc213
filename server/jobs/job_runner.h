// The seam between the job queue and the work a job does. The worker pool owns claiming,
// leases, heartbeats, cancellation, events and the final write; a JobRunner only does the
// work, reporting through its JobContext.
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "elexirion/v1/jobs.pb.h"
#include "elexirion/v1/program.pb.h"
#include "server/common/cancellation.h"
#include "server/store/records.h"

namespace elexirion::jobs {

// What a running job can see and do. Thread safe: a runner may emit from many threads.
class JobContext {
 public:
  virtual ~JobContext() = default;
  virtual const store::JobRecord& job() const = 0;
  virtual const v1::OptimizeModuleRequest& request() const = 0;
  // Set when the job is cancelled, its lease is lost or the server shuts down.
  virtual const CancellationToken& cancel() const = 0;
  // The resume state a previous attempt checkpointed ("" on the first attempt).
  virtual const std::string& checkpoint() const = 0;
  // Persists a progress event (fenced by the lease) and pushes it to live watchers.
  virtual absl::Status Emit(v1::ProgressEvent event) = 0;
  // Persists resume state and live progress (fenced).
  virtual absl::Status Checkpoint(const std::string& checkpoint,
                                  const v1::JobProgress& progress) = 0;
  // The production program of the job's program name, if any (for promote-if-better).
  virtual std::optional<store::ProgramRecord> CurrentProduction() const = 0;
};

// How the work ended.
struct RunOutcome {
  // kSucceeded, kFailed or kCancelled.
  store::JobState state = store::JobState::kSucceeded;
  v1::EndReason end_reason = v1::END_REASON_COMPLETED;
  std::string error;
  // The program produced (final, or best so far for a cancelled/budget-ended job).
  std::optional<store::ProgramRecord> program;
  // Promote the new version (it beat the current production version, or there is none).
  bool promote = false;
  v1::JobProgress progress;
  v1::ProgressEvent::Summary summary;
};

// Thread safe: one runner serves every worker.
class JobRunner {
 public:
  virtual ~JobRunner() = default;
  // Errors returned here fail the job with the message; cancellation should come back as a
  // RunOutcome with state kCancelled and the best program so far.
  virtual absl::StatusOr<RunOutcome> Run(JobContext& context) = 0;
};

}  // namespace elexirion::jobs
