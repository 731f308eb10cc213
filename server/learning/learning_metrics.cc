#include "server/learning/learning_metrics.h"

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "server/metrics/registry.h"

namespace elexirion::learning {
namespace {

absl::Mutex g_mu(absl::kConstInit);
prometheus::Family<prometheus::Counter>* g_runs ABSL_GUARDED_BY(g_mu) = nullptr;

prometheus::Family<prometheus::Counter>* Runs() {
  absl::MutexLock lock(&g_mu);
  return g_runs;
}

}  // namespace

void InitLearningMetrics() {
  absl::MutexLock lock(&g_mu);
  if (g_runs != nullptr) return;
  g_runs = &prometheus::BuildCounter()
                .Name("elexirion_learning_runs_total")
                .Help("Continuous-learning schedule slots handled, by schedule and outcome.")
                .Register(*metrics::DefaultRegistry());
}

void RecordLearningRun(const std::string& schedule, const std::string& outcome) {
  prometheus::Family<prometheus::Counter>* runs = Runs();
  if (runs == nullptr) return;
  runs->Add({{"schedule", schedule}, {"outcome", outcome}}).Increment();
}

}  // namespace elexirion::learning
