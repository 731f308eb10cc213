// Validation of OptimizeModule requests: everything a job needs is checked before the job
// is accepted, and every problem is INVALID_ARGUMENT naming the field.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "elexirion/v1/jobs.pb.h"
#include "server/api/api_context.h"
#include "server/store/records.h"

namespace elexirion::api {

struct ValidatedOptimizeRequest {
  // The request as stored with the job (a registered pipeline is resolved to its YAML so a
  // later re-registration cannot change a queued job).
  v1::OptimizeModuleRequest request;
  // Canonical optimizer name, e.g. "bootstrap_few_shot".
  std::string optimizer;
};

absl::StatusOr<ValidatedOptimizeRequest> ValidateOptimizeRequest(
    const ApiContext& api, const v1::OptimizeModuleRequest& request);

// OptimizeModule's core, shared with the continuous-learning scheduler: validates, enforces
// the backlog cap (RESOURCE_EXHAUSTED), persists the job QUEUED (idempotent on request_id:
// `*already_existed` is set when the key was known) and wakes the workers.
absl::StatusOr<store::JobRecord> SubmitOptimizeJob(const ApiContext& api,
                                                   const v1::OptimizeModuleRequest& request,
                                                   bool* already_existed = nullptr);

}  // namespace elexirion::api
