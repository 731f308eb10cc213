#include "server/metrics/rpc_metrics.h"

#include <array>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "server/metrics/registry.h"

namespace elexirion::metrics {
namespace {

// gRPC status code names, indexed by code.
constexpr std::array<const char*, 17> kCodeNames = {
    "OK",        "CANCELLED",          "UNKNOWN",        "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED", "NOT_FOUND",  "ALREADY_EXISTS", "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL",       "UNAVAILABLE",    "DATA_LOSS",
    "UNAUTHENTICATED"};

struct RpcFamilies {
  prometheus::Family<prometheus::Counter>* requests = nullptr;
  prometheus::Family<prometheus::Histogram>* latency = nullptr;
  prometheus::Gauge* inflight = nullptr;
};

absl::Mutex g_mu(absl::kConstInit);
RpcFamilies* g_families ABSL_GUARDED_BY(g_mu) = nullptr;

RpcFamilies* Families() {
  absl::MutexLock lock(&g_mu);
  return g_families;
}

std::string MethodLabel(absl::string_view method) {
  if (absl::StartsWith(method, "/elexirion.v1.") || absl::StartsWith(method, "/grpc.health.v1.")) {
    return std::string(method);
  }
  return "other";
}

}  // namespace

void InitRpcMetrics(absl::string_view version) {
  absl::MutexLock lock(&g_mu);
  if (g_families != nullptr) return;
  auto& registry = *DefaultRegistry();
  auto* f = new RpcFamilies();
  f->requests = &prometheus::BuildCounter()
                     .Name("elexirion_rpc_requests_total")
                     .Help("Finished gRPC requests by method and status code.")
                     .Register(registry);
  f->latency = &prometheus::BuildHistogram()
                    .Name("elexirion_rpc_latency_seconds")
                    .Help("gRPC request latency in seconds by method and status code.")
                    .Register(registry);
  f->inflight = &prometheus::BuildGauge()
                     .Name("elexirion_rpc_inflight")
                     .Help("gRPC requests being handled now.")
                     .Register(registry)
                     .Add({});
  prometheus::BuildGauge()
      .Name("elexirion_build_info")
      .Help("Build information; the value is always 1.")
      .Register(registry)
      .Add({{"version", std::string(version)}})
      .Set(1);
  prometheus::BuildGauge()
      .Name("elexirion_process_start_time_seconds")
      .Help("Start time of the process since the Unix epoch in seconds.")
      .Register(registry)
      .Add({})
      .Set(absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()));
  g_families = f;
}

void RecordRpc(absl::string_view method, int grpc_code, double seconds) {
  RpcFamilies* f = Families();
  if (f == nullptr) return;
  const char* code =
      grpc_code >= 0 && grpc_code < static_cast<int>(kCodeNames.size()) ? kCodeNames[grpc_code]
                                                                         : "UNKNOWN";
  prometheus::Labels labels{{"method", MethodLabel(method)}, {"code", code}};
  f->requests->Add(labels).Increment();
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
      0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30,    60};
  f->latency->Add(labels, kBuckets).Observe(seconds);
}

void SetInflightRpcs(int64_t n) {
  RpcFamilies* f = Families();
  if (f != nullptr) f->inflight->Set(static_cast<double>(n));
}

}  // namespace elexirion::metrics
