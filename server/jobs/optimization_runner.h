// The JobRunner of optimization jobs: turns an OptimizeModuleRequest into the optimizer's
// request, runs it with the job's cancellation, budget, deadline and checkpoint, streams its
// progress as ProgressEvents and hands back the program for the registry.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "elexirion/v1/jobs.pb.h"
#include "server/jobs/job_runner.h"
#include "server/llm/llm_client.h"
#include "server/optimizer/optimize.h"
#include "server/pipeline/loader.h"
#include "server/store/store.h"

namespace elexirion::jobs {

struct OptimizationEnvironment {
  // Not owned; outlive the runner.
  llm::LlmClient* client = nullptr;
  store::Store* store = nullptr;
  pipeline::LoadOptions load_options;
  std::string prompts_dir;
  std::function<std::string(const std::string& step_type)> provider_for_step;
  // How long a job waits, paused, for an unavailable provider before it fails
  // (jobs.max_provider_outage; see provider_outage.h).
  absl::Duration max_provider_outage = absl::Minutes(15);
  // First probe interval of such a pause (doubled per failed probe, at most 30 s).
  absl::Duration provider_probe_interval = absl::Seconds(1);
};

// The optimizer's request for `request`: loads the pipeline (inline YAML only: the API
// resolves registered names before the job is stored), the examples (inline, JSON Lines or a
// stored dataset), the metric and the optimizer parameters. INVALID_ARGUMENT names the field.
absl::StatusOr<optimizer::OptimizeRequest> BuildOptimizeRequest(
    const v1::OptimizeModuleRequest& request, const OptimizationEnvironment& env);

// Every check the optimizer makes before its first LLM call, without making any.
absl::Status ValidateOptimizeRequest(const optimizer::OptimizeRequest& request,
                                     llm::LlmClient* client);

// The canonical optimizer name of a request ("bootstrap_few_shot", ...).
std::string OptimizerName(const v1::OptimizerSpec& spec);

std::unique_ptr<JobRunner> CreateOptimizationRunner(OptimizationEnvironment env);

}  // namespace elexirion::jobs
