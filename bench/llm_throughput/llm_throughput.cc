// llm_throughput: how close the provider layer gets to the ideal when the provider is slow.
//
// Forks a fake provider (tests/fakes) answering every call after --latency-ms, then sends
// --calls calls through the ProviderRouter (OpenAI-compatible instance, curl multi
// transport, concurrency limit = --concurrency) from --concurrency caller threads, and
// prints wall time against the ideal calls / concurrency × latency, CPU per call (client
// process, getrusage; the fake server's CPU separately) and peak RSS.
//
//   llm_throughput [--calls 2000] [--concurrency 64] [--latency-ms 50]
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/llm/provider_router.h"
#include "tests/fakes/fake_provider_server.h"

namespace {

double CpuSeconds(const rusage& u) {
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// The child: serve until SIGTERM. Signals are blocked before any thread exists.
[[noreturn]] void RunServer(int latency_ms, int port_fd) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  elexirion::fakes::FakeProviderServer::Options options;
  options.latency = absl::Milliseconds(latency_ms);
  auto server = elexirion::fakes::FakeProviderServer::Start(options);
  int port = server.ok() ? (*server)->port() : -1;
  if (::write(port_fd, &port, sizeof(port)) != sizeof(port)) _exit(1);
  ::close(port_fd);
  if (!server.ok()) _exit(1);
  int sig = 0;
  sigwait(&set, &sig);
  (*server)->Stop();
  _exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  int calls = 2000;
  int concurrency = 64;
  int latency_ms = 50;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    int value = std::atoi(argv[i + 1]);
    if (flag == "--calls") {
      calls = value;
    } else if (flag == "--concurrency") {
      concurrency = value;
    } else if (flag == "--latency-ms") {
      latency_ms = value;
    } else {
      std::fprintf(stderr,
                   "usage: llm_throughput [--calls N] [--concurrency N] [--latency-ms N]\n");
      return 2;
    }
  }
  if (calls <= 0 || concurrency <= 0 || latency_ms < 0) return 2;

  int fds[2];
  if (::pipe(fds) != 0) return 1;
  pid_t child = ::fork();
  if (child < 0) return 1;
  if (child == 0) {
    ::close(fds[0]);
    RunServer(latency_ms, fds[1]);
  }
  ::close(fds[1]);
  int port = -1;
  if (::read(fds[0], &port, sizeof(port)) != sizeof(port) || port <= 0) {
    std::fprintf(stderr, "fake provider failed to start\n");
    return 1;
  }
  ::close(fds[0]);

  using elexirion::llm::InstanceConfig;
  using elexirion::llm::ProviderRouter;
  ProviderRouter::Options options;
  InstanceConfig fake;
  fake.name = "fake";
  fake.kind = elexirion::llm::ProviderKind::kOpenAi;
  fake.base_url = absl::StrCat("http://127.0.0.1:", port, "/v1");
  fake.default_model = "bench-model";
  fake.max_concurrency = concurrency;
  fake.max_retries = 0;
  fake.cooldown_after_failures = 0;
  options.config.instances["fake"] = fake;
  auto router = ProviderRouter::Create(options);
  if (!router.ok()) {
    std::fprintf(stderr, "router: %s\n", router.status().ToString().c_str());
    return 1;
  }

  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  std::atomic<int> next{0};
  std::atomic<int> errors{0};
  const absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&] {
      for (int i = next.fetch_add(1); i < calls; i = next.fetch_add(1)) {
        elexirion::llm::LlmRequest request;
        request.provider = "fake";
        request.system = "You are a benchmark.";
        request.messages = {
            {"user", absl::StrCat("Question number ", i, ": what is ", i, " + 1?")}};
        request.max_tokens = 64;
        auto r = (*router)->Complete(request, {});
        if (!r.ok()) {
          if (errors.fetch_add(1) < 3)
            std::fprintf(stderr, "error: %s\n", r.status().ToString().c_str());
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const double wall = absl::ToDoubleSeconds(absl::Now() - start);
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  router->reset();

  ::kill(child, SIGTERM);
  int status = 0;
  rusage server_usage{};
  ::wait4(child, &status, 0, &server_usage);

  const double ideal = static_cast<double>(calls) / concurrency * latency_ms / 1000.0;
  const double client_cpu = CpuSeconds(after) - CpuSeconds(before);
  std::printf("llm_throughput: %d calls, concurrency %d, provider latency %d ms\n", calls,
              concurrency, latency_ms);
  std::printf("  wall time        %.3f s (ideal %.3f s, ratio %.3f, target <= 1.25)\n", wall, ideal,
              wall / ideal);
  std::printf("  throughput       %.0f calls/s\n", calls / wall);
  std::printf("  client CPU/call  %.1f us (user+sys %.3f s)\n", client_cpu / calls * 1e6,
              client_cpu);
  std::printf("  server CPU/call  %.1f us (fake provider process)\n",
              CpuSeconds(server_usage) / calls * 1e6);
  std::printf("  client peak RSS  %.1f MiB\n", static_cast<double>(after.ru_maxrss) / 1024.0);
  std::printf("  errors           %d\n", errors.load());
  std::printf("  target met       %s\n", (errors == 0 && wall / ideal <= 1.25) ? "yes" : "no");
  return errors == 0 ? 0 : 1;
}
