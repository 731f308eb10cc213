// Usage statistics of a pipeline over a time window, and the design document's
// should_optimize rule built on them.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/learning/policy.h"
#include "server/store/store.h"

namespace elexirion::learning {

struct UsageStats {
  std::string pipeline_name;
  absl::Time since;
  absl::Time until;
  store::ExecutionSummary summary;
  // 1.0 when there were no executions (nothing failed).
  double success_rate = 1.0;
  // Examples added to the pipeline's dataset since its last optimization (all of them when it
  // was never optimized).
  int64_t new_examples_since_optimization = 0;
  // store::kUnsetTime when the pipeline was never optimized.
  absl::Time last_optimization_time = store::kUnsetTime;
  // The success rate should_optimize defends: the stored baseline (refreshed weekly) when
  // there is one, else the policy's baseline_success_rate.
  double baseline_success_rate = 0.95;
};

// Stats of `policy.pipeline` over [now - window, now).
absl::StatusOr<UsageStats> ComputeUsageStats(store::Store& store, const PipelinePolicy& policy,
                                             absl::Duration window, absl::Time now);

// The design document's rule: optimize when the success rate is below the baseline (only
// when there were executions), or when MORE than min_new_examples examples arrived since the
// last optimization. `reason` (optional) says which rule fired, or why not.
bool ShouldOptimize(const UsageStats& usage, const PipelinePolicy& policy,
                    std::string* reason = nullptr);

}  // namespace elexirion::learning
