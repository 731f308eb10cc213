#include "server/llm/llm_metrics.h"

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "server/metrics/registry.h"

namespace elexirion::llm {
namespace {

struct Families {
  prometheus::Family<prometheus::Counter>& requests;
  prometheus::Family<prometheus::Histogram>& duration;
  prometheus::Family<prometheus::Counter>& tokens;
  prometheus::Family<prometheus::Counter>& cost;
  prometheus::Family<prometheus::Counter>& retries;
  prometheus::Family<prometheus::Counter>& cache;
  prometheus::Family<prometheus::Gauge>& in_flight;
  prometheus::Family<prometheus::Counter>& cooldowns;
};

Families& Get() {
  static Families* f = [] {
    auto& r = *metrics::DefaultRegistry();
    return new Families{
        prometheus::BuildCounter()
            .Name("elexirion_llm_requests_total")
            .Help("LLM calls by provider instance, model and outcome (cache hits excluded)")
            .Register(r),
        prometheus::BuildHistogram()
            .Name("elexirion_llm_request_duration_seconds")
            .Help("Duration of LLM calls including retries")
            .Register(r),
        prometheus::BuildCounter()
            .Name("elexirion_llm_tokens_total")
            .Help("LLM tokens by provider instance, model and direction")
            .Register(r),
        prometheus::BuildCounter()
            .Name("elexirion_llm_cost_usd_total")
            .Help("LLM spend in USD from the configured price table")
            .Register(r),
        prometheus::BuildCounter()
            .Name("elexirion_llm_retries_total")
            .Help("LLM call retries by provider instance and cause")
            .Register(r),
        prometheus::BuildCounter()
            .Name("elexirion_llm_cache_requests_total")
            .Help("LLM cache lookups by provider instance and result")
            .Register(r),
        prometheus::BuildGauge()
            .Name("elexirion_llm_in_flight")
            .Help("LLM calls in flight by provider instance")
            .Register(r),
        prometheus::BuildCounter()
            .Name("elexirion_llm_cooldowns_total")
            .Help("Cooldowns an LLM provider instance entered after repeated failures")
            .Register(r),
    };
  }();
  return *f;
}

const prometheus::Histogram::BucketBoundaries& Buckets() {
  static const auto* b = new prometheus::Histogram::BucketBoundaries{
      0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
  return *b;
}

}  // namespace

void RecordLlmRequest(const std::string& provider, const std::string& model,
                      const std::string& outcome, double seconds) {
  Families& f = Get();
  f.requests.Add({{"provider", provider}, {"model", model}, {"outcome", outcome}}).Increment();
  f.duration.Add({{"provider", provider}}, Buckets()).Observe(seconds);
}

void RecordLlmTokens(const std::string& provider, const std::string& model, int64_t input,
                     int64_t output) {
  Families& f = Get();
  f.tokens.Add({{"provider", provider}, {"model", model}, {"direction", "in"}})
      .Increment(static_cast<double>(input));
  f.tokens.Add({{"provider", provider}, {"model", model}, {"direction", "out"}})
      .Increment(static_cast<double>(output));
}

void RecordLlmCost(const std::string& provider, const std::string& model, double usd) {
  if (usd <= 0) return;
  Get().cost.Add({{"provider", provider}, {"model", model}}).Increment(usd);
}

void RecordLlmRetry(const std::string& provider, const std::string& reason) {
  Get().retries.Add({{"provider", provider}, {"reason", reason}}).Increment();
}

void RecordLlmCacheLookup(const std::string& provider, bool hit) {
  Get().cache.Add({{"provider", provider}, {"result", hit ? "hit" : "miss"}}).Increment();
}

void RecordLlmCooldown(const std::string& provider) {
  Get().cooldowns.Add({{"provider", provider}}).Increment();
}

void AddLlmInFlight(const std::string& provider, int delta) {
  Get().in_flight.Add({{"provider", provider}}).Increment(delta);
}

}  // namespace elexirion::llm
