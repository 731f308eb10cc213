// Prometheus view of execution telemetry. The pipeline label is bounded: the first
// `max_pipeline_labels` pipeline names seen keep their own label, later ones share "_other",
// so a runtime reporting arbitrary names cannot blow up the series count.
#pragma once

#include <cstdint>
#include <string>

#include "server/learning/usage.h"

namespace elexirion::learning {

void InitTelemetryMetrics(int max_pipeline_labels);

// One ingested record: outcome "accepted", "duplicate" or "rejected".
void RecordIngested(const std::string& pipeline, const char* outcome, double duration_seconds,
                    double quality_score);
void RecordHarvested(const std::string& pipeline);
// One group commit of `rows` rows that took `seconds`.
void RecordCommit(size_t rows, double seconds);
void SetIngestQueueDepth(int64_t rows);
// Window gauges (success rate, mean quality, latency percentiles, new examples).
void PublishUsage(const UsageStats& usage);

}  // namespace elexirion::learning
