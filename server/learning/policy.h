// The `learning:` section of the server config: how executions become training data and
// when each pipeline re-optimizes itself (the design document's ContinuousLearningSystem,
// per pipeline and declarative).
//
//   learning:
//     harvest_threshold: 8.0        # default for every pipeline
//     time_zone: "localtime"        # schedules run in server time ("UTC", "Europe/Paris", ...)
//     tick: 30s                     # how often the scheduler looks for due slots
//     execution_retention: 720h     # executions older than this are pruned
//     max_record_bytes: 262144      # one execution record, serialized
//     max_label_pipelines: 50       # Prometheus: pipelines beyond this share label "_other"
//     pipelines:
//       code_analysis:              # a registered pipeline (RegisterPipeline)
//         program: code_analysis    # program name the runs save to (default: pipeline name)
//         dataset: code_analysis    # harvest / training dataset (default: pipeline name)
//         harvest_threshold: 8.0
//         quality_metric: {...}     # optional MetricSpec (proto JSON mapping) scoring records
//                                   # that arrive without quality; default: the heuristic
//         metric: {...}             # MetricSpec the scheduled optimizations use (required
//                                   # when daily or weekly is enabled)
//         baseline_success_rate: 0.95
//         min_new_examples: 10      # should_optimize when MORE new examples than this
//         feedback_interval: 10m
//         daily:  {enabled: true, at: "02:00", optimizer: {...}}   # OptimizerSpec JSON
//         weekly: {enabled: true, day: sunday, at: "03:00", optimizer: {...}}
//         budget: {...}             # Budget JSON applied to scheduled runs
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "elexirion/v1/jobs.pb.h"
#include "yaml-cpp/yaml.h"

namespace elexirion::learning {

inline constexpr double kDefaultHarvestThreshold = 8.0;

struct SchedulePolicy {
  bool enabled = true;
  // Local time of day (in LearningConfig::time_zone).
  int hour = 2;
  int minute = 0;
  // Weekly schedules only.
  absl::Weekday day = absl::Weekday::sunday;
  // What the run optimizes with.
  v1::OptimizerSpec optimizer;
};

struct PipelinePolicy {
  std::string pipeline;
  // Default: the pipeline name.
  std::string program;
  // Default: the pipeline name.
  std::string dataset;
  double harvest_threshold = kDefaultHarvestThreshold;
  // Scores records that arrive without a quality score; unset: the design's heuristic.
  std::optional<v1::MetricSpec> quality_metric;
  // The metric of scheduled optimizations.
  std::optional<v1::MetricSpec> metric;
  // should_optimize: success rate below this...
  double baseline_success_rate = 0.95;
  // ...or more than this many examples added since the last optimization.
  int64_t min_new_examples = 10;
  absl::Duration feedback_interval = absl::Minutes(10);
  // Default: 02:00 light BootstrapFewShot when should_optimize holds.
  SchedulePolicy daily;
  // Default: Sunday 03:00 full MIPROv2, unconditional; also refreshes the baseline.
  SchedulePolicy weekly;
  v1::Budget budget;
};

struct LearningConfig {
  double harvest_threshold = kDefaultHarvestThreshold;
  absl::TimeZone time_zone = absl::LocalTimeZone();
  absl::Duration tick = absl::Seconds(30);
  absl::Duration execution_retention = absl::Hours(24 * 30);
  int64_t max_record_bytes = 256 << 10;
  int max_label_pipelines = 50;
  std::map<std::string, PipelinePolicy> pipelines;

  // The policy of `pipeline`, or the defaults (harvest threshold, names) for a pipeline
  // without one: every pipeline's executions are recorded and harvested.
  PipelinePolicy PolicyFor(const std::string& pipeline) const;

  // Just the harvest rule of `pipeline` (per ingested record: no policy is built).
  struct HarvestRule {
    double threshold = kDefaultHarvestThreshold;
    std::string dataset;
  };
  HarvestRule HarvestFor(const std::string& pipeline) const;
};

// Parses the raw `learning:` node (Null = all defaults). INVALID_ARGUMENT naming the key, e.g.
// "learning.pipelines.code_analysis.daily.at: expected HH:MM".
absl::StatusOr<LearningConfig> ParseLearningConfig(const YAML::Node& node);

}  // namespace elexirion::learning
