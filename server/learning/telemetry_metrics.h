// Prometheus view of execution telemetry. The pipeline label is bounded: the first
// `max_pipeline_labels` pipeline names seen keep their own label, later ones share "_other",
// so a runtime reporting arbitrary names cannot blow up the series count.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "server/learning/usage.h"

namespace elexirion::learning {

void InitTelemetryMetrics(int max_pipeline_labels);

// What one commit did for one pipeline.
struct PipelineIngest {
  int64_t accepted = 0;
  int64_t duplicates = 0;
  int64_t rejected = 0;
  int64_t harvested = 0;
  // Of the accepted records.
  std::vector<double> durations;
  std::vector<double> qualities;
};
// Called once per pipeline per commit (label lookups are not per record).
void RecordIngested(const std::string& pipeline, const PipelineIngest& ingest);
// One group commit of `rows` rows that took `seconds`.
void RecordCommit(size_t rows, double seconds);
void SetIngestQueueDepth(int64_t rows);
// Window gauges (success rate, mean quality, latency percentiles, new examples).
void PublishUsage(const UsageStats& usage);

}  // namespace elexirion::learning
