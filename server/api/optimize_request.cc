#include "server/api/optimize_request.h"

#include "absl/strings/str_cat.h"
#include "server/api/validation.h"
#include "server/common/status_macros.h"
#include "server/jobs/optimization_runner.h"
#include "server/jobs/worker_pool.h"
#include "server/store/store.h"

namespace elexirion::api {

absl::StatusOr<ValidatedOptimizeRequest> ValidateOptimizeRequest(
    const ApiContext& api, const v1::OptimizeModuleRequest& request) {
  RETURN_IF_ERROR(ValidateResourceName("program_name", request.program_name()));
  ValidatedOptimizeRequest out;
  out.request = request;
  switch (request.pipeline().source_case()) {
    case v1::PipelineRef::kYaml:
      break;
    case v1::PipelineRef::kName: {
      auto record = api.store->GetPipeline(request.pipeline().name());
      if (absl::IsNotFound(record.status())) {
        return absl::InvalidArgumentError(absl::StrCat(
            "pipeline.name: no pipeline registered as \"", request.pipeline().name(), "\""));
      }
      if (!record.ok()) return record.status();
      // Pin the YAML: re-registering the pipeline later must not change a queued job; the
      // name is kept for the program registry.
      // set_yaml clears the name (a oneof), so it moves to registered_name.
      out.request.mutable_pipeline()->set_yaml(record->yaml);
      out.request.mutable_pipeline()->set_registered_name(record->name);
      break;
    }
    default:
      return absl::InvalidArgumentError("pipeline: set yaml or name");
  }
  if (request.budget().max_llm_calls() < 0) {
    return absl::InvalidArgumentError("budget.max_llm_calls: must be >= 0");
  }
  if (request.budget().max_usd() < 0) {
    return absl::InvalidArgumentError("budget.max_usd: must be >= 0");
  }
  if (request.budget().has_max_duration() && request.budget().max_duration().seconds() < 0) {
    return absl::InvalidArgumentError("budget.max_duration: must be positive");
  }
  if (request.lm().has_temperature() &&
      (request.lm().temperature() < 0 || request.lm().temperature() > 2)) {
    return absl::InvalidArgumentError("lm.temperature: must be in [0, 2]");
  }
  ASSIGN_OR_RETURN(optimizer::OptimizeRequest optimize,
                   jobs::BuildOptimizeRequest(out.request, *api.optimization));
  RETURN_IF_ERROR(jobs::ValidateOptimizeRequest(optimize, api.optimization->client));
  out.optimizer = jobs::OptimizerName(request.optimizer());
  return out;
}

absl::StatusOr<store::JobRecord> SubmitOptimizeJob(const ApiContext& api,
                                                   const v1::OptimizeModuleRequest& request,
                                                   bool* already_existed) {
  if (request.request_id().size() > 128) {
    return absl::InvalidArgumentError("request_id: longer than 128 characters");
  }
  ASSIGN_OR_RETURN(ValidatedOptimizeRequest validated, ValidateOptimizeRequest(api, request));
  ASSIGN_OR_RETURN(int64_t queued, api.store->CountJobs({store::JobState::kQueued}));
  if (queued >= api.max_queued_jobs) {
    return absl::ResourceExhaustedError(
        absl::StrCat("job backlog full: ", queued, " jobs queued (jobs.max_queued); retry later"));
  }
  store::JobRecord record;
  record.request_id = request.request_id();
  record.program_name = request.program_name();
  record.optimizer = validated.optimizer;
  record.request = validated.request.SerializeAsString();
  // The "queued" event is written with the job: a fast job claimed at once must not end
  // before it (a watcher would see events after the terminal one).
  v1::ProgressEvent queued_event;
  queued_event.mutable_state_changed()->set_state(v1::JOB_STATE_QUEUED);
  queued_event.mutable_state_changed()->set_message("queued");
  const store::NewJobEvent first_event{"state_changed", queued_event.SerializeAsString()};
  bool existed = false;
  ASSIGN_OR_RETURN(record, api.store->CreateJob(record, &existed, &first_event));
  if (already_existed != nullptr) *already_existed = existed;
  if (!existed && api.workers != nullptr) api.workers->Wake();
  return record;
}

}  // namespace elexirion::api
