#include "server/learning/telemetry_metrics.h"

#include "absl/synchronization/mutex.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "server/metrics/label_cap.h"
#include "server/metrics/registry.h"

namespace elexirion::learning {
namespace {

constexpr char kOtherPipelines[] = "_other";

struct Families {
  metrics::LabelCap pipelines{50, kOtherPipelines};
  prometheus::Family<prometheus::Counter>* recorded = nullptr;
  prometheus::Family<prometheus::Counter>* harvested = nullptr;
  prometheus::Family<prometheus::Histogram>* duration = nullptr;
  prometheus::Family<prometheus::Histogram>* quality = nullptr;
  prometheus::Histogram* commit_rows = nullptr;
  prometheus::Histogram* commit_seconds = nullptr;
  prometheus::Gauge* queue_depth = nullptr;
  prometheus::Family<prometheus::Gauge>* success_rate = nullptr;
  prometheus::Family<prometheus::Gauge>* mean_quality = nullptr;
  prometheus::Family<prometheus::Gauge>* latency = nullptr;
  prometheus::Family<prometheus::Gauge>* new_examples = nullptr;
};

absl::Mutex g_mu(absl::kConstInit);
Families* g_families ABSL_GUARDED_BY(g_mu) = nullptr;

Families* Get() {
  absl::MutexLock lock(&g_mu);
  return g_families;
}

}  // namespace

void InitTelemetryMetrics(int max_pipeline_labels) {
  const size_t max_labels = max_pipeline_labels > 0 ? static_cast<size_t>(max_pipeline_labels) : 1;
  absl::MutexLock lock(&g_mu);
  if (g_families != nullptr) {
    // Another server in this process (tests): the newest cap applies to names not seen yet.
    g_families->pipelines.set_max(max_labels);
    return;
  }
  auto& registry = *metrics::DefaultRegistry();
  auto* f = new Families();
  f->pipelines.set_max(max_labels);
  f->recorded = &prometheus::BuildCounter()
                     .Name("elexirion_executions_recorded_total")
                     .Help(
                         "Execution records received, by pipeline and outcome "
                         "(accepted, duplicate, rejected).")
                     .Register(registry);
  f->harvested = &prometheus::BuildCounter()
                      .Name("elexirion_examples_harvested_total")
                      .Help("Executions that became training examples, by pipeline.")
                      .Register(registry);
  f->duration = &prometheus::BuildHistogram()
                     .Name("elexirion_execution_duration_seconds")
                     .Help("Duration of recorded pipeline executions, by pipeline.")
                     .Register(registry);
  f->quality = &prometheus::BuildHistogram()
                    .Name("elexirion_execution_quality")
                    .Help("Quality score (0-10) of recorded executions, by pipeline.")
                    .Register(registry);
  f->commit_rows = &prometheus::BuildHistogram()
                        .Name("elexirion_execution_commit_rows")
                        .Help("Execution rows per durable group commit.")
                        .Register(registry)
                        .Add({}, prometheus::Histogram::BucketBoundaries{
                                     1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000});
  f->commit_seconds =
      &prometheus::BuildHistogram()
           .Name("elexirion_execution_commit_seconds")
           .Help("Duration of one durable group commit of execution rows.")
           .Register(registry)
           .Add({}, prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                            0.025, 0.05, 0.1, 0.25, 0.5, 1});
  f->queue_depth = &prometheus::BuildGauge()
                        .Name("elexirion_execution_ingest_queue_rows")
                        .Help("Execution rows waiting for a commit.")
                        .Register(registry)
                        .Add({});
  f->success_rate = &prometheus::BuildGauge()
                         .Name("elexirion_pipeline_success_rate")
                         .Help("Success rate of a pipeline over the last 24 h.")
                         .Register(registry);
  f->mean_quality = &prometheus::BuildGauge()
                         .Name("elexirion_pipeline_mean_quality")
                         .Help("Mean quality score (0-10) of a pipeline over the last 24 h.")
                         .Register(registry);
  f->latency = &prometheus::BuildGauge()
                    .Name("elexirion_pipeline_latency_seconds")
                    .Help("Execution latency percentiles of a pipeline over the last 24 h.")
                    .Register(registry);
  f->new_examples = &prometheus::BuildGauge()
                         .Name("elexirion_pipeline_new_examples")
                         .Help("Training examples added since the pipeline's last optimization.")
                         .Register(registry);
  g_families = f;
}

void RecordIngested(const std::string& pipeline, const PipelineIngest& ingest) {
  Families* f = Get();
  if (f == nullptr) return;
  const std::string label = f->pipelines.Label(pipeline);
  auto count = [&](const char* outcome, int64_t n) {
    if (n > 0) {
      f->recorded->Add({{"pipeline", label}, {"outcome", outcome}})
          .Increment(static_cast<double>(n));
    }
  };
  count("accepted", ingest.accepted);
  count("duplicate", ingest.duplicates);
  count("rejected", ingest.rejected);
  if (ingest.harvested > 0) {
    f->harvested->Add({{"pipeline", label}}).Increment(static_cast<double>(ingest.harvested));
  }
  if (ingest.durations.empty()) return;
  static const prometheus::Histogram::BucketBoundaries kDuration = {0.1, 0.25, 0.5, 1,   2.5, 5,
                                                                    10,  30,   60,  120, 300, 600};
  static const prometheus::Histogram::BucketBoundaries kQuality = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  prometheus::Histogram& duration = f->duration->Add({{"pipeline", label}}, kDuration);
  prometheus::Histogram& quality = f->quality->Add({{"pipeline", label}}, kQuality);
  for (double d : ingest.durations) duration.Observe(d);
  for (double q : ingest.qualities) quality.Observe(q);
}

void RecordCommit(size_t rows, double seconds) {
  Families* f = Get();
  if (f == nullptr) return;
  f->commit_rows->Observe(static_cast<double>(rows));
  f->commit_seconds->Observe(seconds);
}

void SetIngestQueueDepth(int64_t rows) {
  Families* f = Get();
  if (f == nullptr) return;
  f->queue_depth->Set(static_cast<double>(rows));
}

void PublishUsage(const UsageStats& usage) {
  Families* f = Get();
  if (f == nullptr) return;
  const std::string label = f->pipelines.Label(usage.pipeline_name);
  // "_other" aggregates several pipelines: a gauge of one of them would be misleading.
  if (label == kOtherPipelines) return;
  f->success_rate->Add({{"pipeline", label}}).Set(usage.success_rate);
  f->mean_quality->Add({{"pipeline", label}}).Set(usage.summary.mean_quality);
  f->latency->Add({{"pipeline", label}, {"quantile", "0.5"}})
      .Set(usage.summary.latency_p50_seconds);
  f->latency->Add({{"pipeline", label}, {"quantile", "0.95"}})
      .Set(usage.summary.latency_p95_seconds);
  f->latency->Add({{"pipeline", label}, {"quantile", "0.99"}})
      .Set(usage.summary.latency_p99_seconds);
  f->new_examples->Add({{"pipeline", label}})
      .Set(static_cast<double>(usage.new_examples_since_optimization));
}

}  // namespace elexirion::learning
