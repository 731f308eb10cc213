// bench/execute_pipeline: ExecutePipeline of a two-step pipeline over gRPC against the real
// server (in-process, SQLite) with a zero-latency fake provider over real HTTP. Prints p50/p99
// and requests/s at concurrency 1 and 16, the server's own time per step, and, for contrast,
// the cost of spawning one trivial subprocess (the floor of the subprocess bridge this
// service replaces).
//
// usage: execute_pipeline [--seconds N]   (default 3 s per row)
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/common/logging.h"
#include "tests/fakes/fake_provider_server.h"
#include "tests/testutil/test_server.h"

extern char** environ;

namespace elexirion {
namespace {

constexpr char kPipeline[] =
    "workflow:\n  name: bench\n  steps:\n"
    "    - name: analyze\n      type: claude\n"
    "      prompt:\n        - type: static\n          content: \"Analyze: {{inputs.code}}\"\n"
    "    - name: summarize\n      type: claude\n"
    "      prompt:\n        - type: static\n          content: Summarize the analysis\n"
    "        - type: previous_response\n          step: analyze\n";

struct Row {
  int64_t calls = 0, errors = 0;
  double seconds = 0, p50_us = 0, p99_us = 0, server_step_us = 0;
};

Row Measure(client::Client& client, int concurrency, absl::Duration duration, bool cached) {
  std::vector<std::vector<double>> latencies(static_cast<size_t>(concurrency));
  std::vector<double> server_step_us(static_cast<size_t>(concurrency));
  std::atomic<int64_t> errors{0};
  std::atomic<int64_t> counter{0};
  auto call = [&](int t, std::vector<double>* lat) {
    v1::ExecutePipelineRequest request;
    request.mutable_pipeline()->set_yaml(kPipeline);
    (*request.mutable_inputs()->mutable_fields())["code"].set_string_value(
        cached ? "x = 1" : absl::StrCat("x = ", counter.fetch_add(1)));
    request.set_no_cache(!cached);
    grpc::ClientContext ctx;
    client.Prepare(&ctx);
    v1::ExecutePipelineResponse response;
    const absl::Time before = absl::Now();
    grpc::Status status = client.pipelines().ExecutePipeline(&ctx, request, &response);
    if (lat != nullptr) lat->push_back(absl::ToDoubleMicroseconds(absl::Now() - before));
    if (!status.ok() || !response.success()) {
      ++errors;
      return;
    }
    double step_us = 0;
    for (const auto& s : response.steps()) step_us += s.duration_seconds() * 1e6;
    server_step_us[static_cast<size_t>(t)] += step_us / response.steps_size();
  };
  for (int i = 0; i < 100; ++i) call(0, nullptr);
  server_step_us[0] = 0;
  errors = 0;
  const absl::Time start = absl::Now();
  const absl::Time end = start + duration;
  std::vector<std::thread> threads;
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&, t] {
      while (absl::Now() < end) call(t, &latencies[static_cast<size_t>(t)]);
    });
  }
  for (auto& t : threads) t.join();
  Row row;
  row.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  std::vector<double> all;
  for (auto& v : latencies) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  row.calls = static_cast<int64_t>(all.size());
  row.errors = errors.load();
  if (!all.empty()) {
    row.p50_us = all[all.size() / 2];
    row.p99_us = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  }
  double total_step = 0;
  for (double v : server_step_us) total_step += v;
  row.server_step_us = row.calls > 0 ? total_step / static_cast<double>(row.calls) : 0;
  return row;
}

double SpawnMicros(int n) {
  const char* argv[] = {"/bin/true", nullptr};
  const absl::Time start = absl::Now();
  for (int i = 0; i < n; ++i) {
    pid_t pid;
    if (posix_spawn(&pid, "/bin/true", nullptr, nullptr, const_cast<char**>(argv), environ) != 0) {
      return -1;
    }
    int status;
    waitpid(pid, &status, 0);
  }
  return absl::ToDoubleMicroseconds(absl::Now() - start) / n;
}

int Main(int argc, char** argv) {
  int seconds = 3;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--seconds") == 0) (void)absl::SimpleAtoi(argv[i + 1], &seconds);
  }
  logging::SetMinLevel(logging::Level::kError);
  auto fake = fakes::FakeProviderServer::Start();
  if (!fake.ok()) return 1;
  testutil::TempDir dir;
  config::ServerConfig config = testutil::TestConfig(dir);
  config.http.listen = "";
  std::string key = dir.Write("key", "sk-bench-0123456789");
  config.llm = YAML::Load(absl::StrCat("providers:\n  anthropic:\n    kind: anthropic\n"
                                       "    base_url: ",
                                       (*fake)->base_url(), "\n    api_key_file: ", key,
                                       "\n    max_concurrency: 64\n"));
  auto server = testutil::InProcessServer::Start(config);
  if (!server.ok()) {
    std::fprintf(stderr, "server: %s\n", std::string(server.status().message()).c_str());
    return 1;
  }
  auto client = (*server)->NewClient();
  std::printf(
      "execute_pipeline: 2-step pipeline, real server in-process, fake provider over HTTP "
      "(0 ms), %d s per row, %u cores\n",
      seconds, std::thread::hardware_concurrency());
  for (bool cached : {false, true}) {
    for (int concurrency : {1, 16}) {
      Row r = Measure(*client, concurrency, absl::Seconds(seconds), cached);
      std::printf(
          "%-24s concurrency %2d: %7lld calls %8.0f req/s  p50 %8.1f us  p99 %8.1f us  "
          "server time/step %7.1f us%s\n",
          cached ? "LLM cache hit (SQLite)" : "provider call (HTTP)", concurrency,
          static_cast<long long>(r.calls), r.calls / r.seconds, r.p50_us, r.p99_us,
          r.server_step_us, r.errors > 0 ? "  (ERRORS!)" : "");
    }
  }
  std::printf("for contrast: spawning one trivial subprocess (/bin/true) costs %.1f us\n",
              SpawnMicros(200));
  return 0;
}

}  // namespace
}  // namespace elexirion

int main(int argc, char** argv) { return elexirion::Main(argc, argv); }
