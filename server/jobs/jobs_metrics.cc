#include "server/jobs/jobs_metrics.h"

#include "absl/synchronization/mutex.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "server/metrics/label_cap.h"
#include "server/metrics/registry.h"

namespace elexirion::jobs {
namespace {

constexpr size_t kMaxProgramLabels = 100;

struct Families {
  prometheus::Family<prometheus::Gauge>* jobs = nullptr;
  prometheus::Gauge* queue_depth = nullptr;
  prometheus::Family<prometheus::Histogram>* duration = nullptr;
  prometheus::Family<prometheus::Counter>* trials = nullptr;
  prometheus::Family<prometheus::Gauge>* score = nullptr;
  metrics::LabelCap programs{kMaxProgramLabels, "other"};
};

absl::Mutex g_mu(absl::kConstInit);
Families* g_families ABSL_GUARDED_BY(g_mu) = nullptr;

Families* Get() {
  absl::MutexLock lock(&g_mu);
  return g_families;
}

}  // namespace

void InitJobsMetrics() {
  absl::MutexLock lock(&g_mu);
  if (g_families != nullptr) return;
  auto& registry = *metrics::DefaultRegistry();
  auto* f = new Families();
  f->jobs = &prometheus::BuildGauge()
                 .Name("elexirion_jobs")
                 .Help("Optimization jobs by state (queued and running).")
                 .Register(registry);
  f->queue_depth = &prometheus::BuildGauge()
                        .Name("elexirion_job_queue_depth")
                        .Help("Jobs waiting for a worker.")
                        .Register(registry)
                        .Add({});
  f->duration = &prometheus::BuildHistogram()
                     .Name("elexirion_job_duration_seconds")
                     .Help("Duration of finished jobs by optimizer and outcome.")
                     .Register(registry);
  f->trials = &prometheus::BuildCounter()
                   .Name("elexirion_job_trials_total")
                   .Help("Optimizer trials evaluated, by optimizer.")
                   .Register(registry);
  f->score = &prometheus::BuildGauge()
                  .Name("elexirion_program_last_score")
                  .Help("Validation score (percent) of the newest version of each program.")
                  .Register(registry);
  g_families = f;
}

void SetJobCounts(int64_t queued, int64_t running) {
  Families* f = Get();
  if (f == nullptr) return;
  f->jobs->Add({{"state", "queued"}}).Set(static_cast<double>(queued));
  f->jobs->Add({{"state", "running"}}).Set(static_cast<double>(running));
  f->queue_depth->Set(static_cast<double>(queued));
}

void RecordJobFinished(const std::string& optimizer, const std::string& outcome, double seconds) {
  Families* f = Get();
  if (f == nullptr) return;
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400};
  f->duration->Add({{"optimizer", optimizer}, {"outcome", outcome}}, kBuckets).Observe(seconds);
}

void RecordTrial(const std::string& optimizer) {
  Families* f = Get();
  if (f == nullptr) return;
  f->trials->Add({{"optimizer", optimizer}}).Increment();
}

void SetProgramScore(const std::string& program, double score) {
  Families* f = Get();
  if (f == nullptr) return;
  const std::string label = f->programs.Label(program);
  f->score->Add({{"program", label}}).Set(score);
}

}  // namespace elexirion::jobs
