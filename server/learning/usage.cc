#include "server/learning/usage.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/common/status_macros.h"

namespace elexirion::learning {

absl::StatusOr<UsageStats> ComputeUsageStats(store::Store& store, const PipelinePolicy& policy,
                                             absl::Duration window, absl::Time now) {
  UsageStats usage;
  usage.pipeline_name = policy.pipeline;
  usage.since = now - window;
  usage.until = now;
  ASSIGN_OR_RETURN(usage.summary,
                   store.SummarizeExecutions(policy.pipeline, usage.since, usage.until));
  if (usage.summary.executions > 0) {
    usage.success_rate = static_cast<double>(usage.summary.successes) /
                         static_cast<double>(usage.summary.executions);
  }

  // The newest program of the pipeline marks its last optimization, whoever started it (a
  // scheduled run or a user's OptimizeModule).
  absl::Time examples_since = absl::InfinitePast();
  auto latest = store.GetLatestProgramForPipeline(policy.pipeline);
  if (latest.ok()) {
    usage.last_optimization_time = latest->created_at;
    examples_since = latest->created_at;
  } else if (!absl::IsNotFound(latest.status())) {
    return latest.status();
  }

  // No dataset yet means nothing was harvested yet: zero new examples, not an error.
  auto count = store.CountExamplesSince(policy.dataset, examples_since);
  if (count.ok()) {
    usage.new_examples_since_optimization = *count;
  } else if (!absl::IsNotFound(count.status())) {
    return count.status();
  }

  usage.baseline_success_rate = policy.baseline_success_rate;
  auto baseline = store.GetPipelineBaseline(policy.pipeline);
  if (baseline.ok()) {
    usage.baseline_success_rate = baseline->success_rate;
  } else if (!absl::IsNotFound(baseline.status())) {
    return baseline.status();
  }
  return usage;
}

bool ShouldOptimize(const UsageStats& usage, const PipelinePolicy& policy, std::string* reason) {
  std::string why;
  bool optimize = false;
  // Without executions there is no success rate to defend: 1.0 is "nothing failed", not
  // evidence of health, so only the example rule can fire.
  if (usage.summary.executions > 0 && usage.success_rate < usage.baseline_success_rate) {
    optimize = true;
    why =
        absl::StrFormat("success rate %.4f below baseline %.4f (%d executions)", usage.success_rate,
                        usage.baseline_success_rate, usage.summary.executions);
  } else if (usage.new_examples_since_optimization > policy.min_new_examples) {
    optimize = true;
    why = absl::StrFormat("%d new examples since the last optimization (more than %d)",
                          usage.new_examples_since_optimization, policy.min_new_examples);
  } else {
    why = absl::StrFormat(
        "healthy: success rate %.4f (baseline %.4f, %d executions), %d new examples (threshold "
        "%d)",
        usage.success_rate, usage.baseline_success_rate, usage.summary.executions,
        usage.new_examples_since_optimization, policy.min_new_examples);
  }
  if (reason != nullptr) *reason = std::move(why);
  return optimize;
}

}  // namespace elexirion::learning
