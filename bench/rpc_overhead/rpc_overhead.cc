// bench/rpc_overhead: latency and throughput of cheap unary RPCs over loopback against the
// real server (in-process, SQLite in a temp dir), at concurrency 1 and 16.
//
// usage: rpc_overhead [--seconds N]   (default 3 s per measurement)
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "server/common/logging.h"
#include "tests/testutil/test_server.h"

namespace elexirion {
namespace {

struct Result {
  int64_t calls = 0;
  int64_t errors = 0;
  double seconds = 0;
  double p50_us = 0, p99_us = 0;
};

template <typename Call>
Result Measure(int concurrency, absl::Duration duration, Call call) {
  std::vector<std::vector<double>> latencies(static_cast<size_t>(concurrency));
  std::atomic<int64_t> errors{0};
  std::vector<std::thread> threads;
  // Warm up connections and caches.
  for (int i = 0; i < 200; ++i) call();
  const absl::Time start = absl::Now();
  const absl::Time end = start + duration;
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&, t] {
      auto& mine = latencies[static_cast<size_t>(t)];
      mine.reserve(200000);
      while (absl::Now() < end) {
        const absl::Time before = absl::Now();
        if (!call()) ++errors;
        mine.push_back(absl::ToDoubleMicroseconds(absl::Now() - before));
      }
    });
  }
  for (auto& t : threads) t.join();
  Result r;
  r.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  std::vector<double> all;
  for (auto& v : latencies) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  r.calls = static_cast<int64_t>(all.size());
  r.errors = errors.load();
  if (!all.empty()) {
    r.p50_us = all[all.size() / 2];
    r.p99_us = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  }
  return r;
}

void Print(const char* rpc, int concurrency, const Result& r) {
  std::printf("%-22s concurrency %2d: %8lld calls  %9.0f req/s  p50 %7.1f us  p99 %7.1f us%s\n",
              rpc, concurrency, static_cast<long long>(r.calls), r.calls / r.seconds, r.p50_us,
              r.p99_us, r.errors > 0 ? "  (ERRORS!)" : "");
}

int Main(int argc, char** argv) {
  int seconds = 3;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--seconds") == 0) (void)absl::SimpleAtoi(argv[i + 1], &seconds);
  }
  testutil::TempDir dir;
  config::ServerConfig config = testutil::TestConfig(dir);
  config.http.listen = "";
  logging::SetMinLevel(logging::Level::kWarning);
  auto server = testutil::InProcessServer::Start(config);
  if (!server.ok()) {
    std::fprintf(stderr, "server: %s\n", std::string(server.status().message()).c_str());
    return 1;
  }
  auto client = (*server)->NewClient();
  auto health = grpc::health::v1::Health::NewStub(client->channel());

  auto list_jobs = [&] {
    grpc::ClientContext ctx;
    client->Prepare(&ctx);
    v1::ListJobsRequest request;
    v1::ListJobsResponse response;
    return client->optimizer().ListJobs(&ctx, request, &response).ok();
  };
  auto check = [&] {
    grpc::ClientContext ctx;
    client->Prepare(&ctx);
    grpc::health::v1::HealthCheckRequest request;
    grpc::health::v1::HealthCheckResponse response;
    return health->Check(&ctx, request, &response).ok();
  };
  std::printf("rpc_overhead: real server in-process, loopback, %d s per row, %u cores\n",
              seconds, std::thread::hardware_concurrency());
  for (int concurrency : {1, 16}) {
    Print("ListJobs (SQLite)", concurrency,
          Measure(concurrency, absl::Seconds(seconds), list_jobs));
    Print("grpc.health Check", concurrency, Measure(concurrency, absl::Seconds(seconds), check));
  }
  return 0;
}

}  // namespace
}  // namespace elexirion

int main(int argc, char** argv) { return elexirion::Main(argc, argv); }
