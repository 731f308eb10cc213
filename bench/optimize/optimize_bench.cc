// optimize_bench: how much faster the parallel-but-faithful optimizer is than a sequential run,
// and that it produces the identical program.
//
// The fake provider server (tests/fakes) answers every call after --latency-ms through
// FakeDspyModel (tests/optimizer/test_util.h): arithmetic questions are answered right with
// >= 2 relevant demos in the prompt. For each scenario
//   bfs  BootstrapFewShot (4 bootstrapped demos), 50 train, 100 validation examples
//   rs   BootstrapFewShotWithRandomSearch (8 candidates), same data
//   gepa GEPA (auto light) on the instruction-only task (multiplication: only the cue words
//        "step by step" in the instruction fix it, demos do not), 50 train / 100 validation
// it runs RunOptimization with --concurrency program runs in flight (router concurrency
// limit 2x that) on a cold LLM cache, then with num_threads = 1 on another cold cache, and
// prints wall time, provider calls, peak calls in flight at the server, the speed-up over
// the sequential time (calls x latency) and over the measured sequential wall time, and
// whether both programs' DSPy JSON are identical.
//   calls GEPA and MIPROv2 (auto light) on the instruction-only task: provider calls made
//        until the validation score first reached 100% (baseline evaluation included).
//
//   optimize_bench [--latency-ms 50] [--concurrency 32] [--scenario bfs|rs|gepa|calls|all]
//                  [--sequential 1|0]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/optimizer/optimize.h"
#include "tests/optimizer/test_util.h"

namespace {

using elexirion::optimizer::ojson;
using elexirion::optimizer::OptimizeHooks;
using elexirion::optimizer::OptimizeRequest;
using elexirion::optimizer::OptimizeResult;
namespace t = elexirion::optimizer::testing;

// Records the provider calls made when the best validation score first reached 100%.
class FirstPerfect final : public elexirion::optimizer::EventSink {
 public:
  explicit FirstPerfect(elexirion::llm::UsageAccount* account) : account_(account) {}
  void OnNewBest(int /*trial*/, double score) override {
    if (score >= 100.0 && calls_ < 0) calls_ = account_->Snapshot().llm_calls;
  }
  int64_t calls() const { return calls_; }

 private:
  elexirion::llm::UsageAccount* account_;
  int64_t calls_ = -1;
};

struct Run {
  OptimizeResult result;
  double wall_seconds = 0;
  int server_requests = 0;
  int peak_in_flight = 0;
};

Run RunOnce(t::FakeModelServer& fake, const OptimizeRequest& request, int router_concurrency,
            elexirion::optimizer::EventSink* events = nullptr,
            elexirion::llm::UsageAccount* account = nullptr) {
  fake.server().Reset();
  auto router = fake.MakeRouter(std::make_shared<elexirion::llm::InMemoryLlmCache>(1'000'000),
                                router_concurrency);
  OptimizeHooks hooks;
  hooks.client = router.get();
  hooks.events = events;
  hooks.account = account;
  const absl::Time start = absl::Now();
  auto result = elexirion::optimizer::RunOptimization(request, hooks);
  Run run;
  run.wall_seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (!result.ok()) {
    std::fprintf(stderr, "optimization failed: %s\n", result.status().ToString().c_str());
    std::exit(1);
  }
  run.result = std::move(*result);
  run.server_requests = fake.server().request_count();
  run.peak_in_flight = fake.server().max_concurrent_requests();
  return run;
}

OptimizeRequest BenchRequest(const std::string& optimizer, ojson params, char op) {
  OptimizeRequest request;
  request.pipeline = t::LoadOrDie(t::kQaPipeline);
  request.trainset = t::ArithmeticExamples(50, op, 0);
  request.valset = t::ArithmeticExamples(100, op, 1000);
  request.metric.kind = elexirion::optimizer::MetricSpec::Kind::kExactMatch;
  request.metric.field = "answer";
  request.optimizer = optimizer;
  request.optimizer_params = std::move(params);
  request.provider_for_step = [](const std::string&) { return std::string("fake"); };
  return request;
}

void Scenario(const std::string& name, const std::string& optimizer, ojson params, int latency_ms,
              int concurrency, bool sequential, char op = '+') {
  t::FakeModelServer fake(absl::Milliseconds(latency_ms), 2 * concurrency);
  OptimizeRequest request = BenchRequest(optimizer, std::move(params), op);
  request.num_threads = concurrency;
  const Run par = RunOnce(fake, request, 2 * concurrency);
  const double seq_estimate = par.result.report.usage.llm_calls * latency_ms / 1000.0;
  std::printf("%s (%s): baseline %.2f%% -> optimized %.2f%%\n", name.c_str(), optimizer.c_str(),
              par.result.report.baseline_score, par.result.report.optimized_score);
  std::printf(
      "  parallel   (num_threads %d): wall %.2f s, provider calls %lld (server saw %d), "
      "peak in flight %d, trials %zu\n",
      concurrency, par.wall_seconds, static_cast<long long>(par.result.report.usage.llm_calls),
      par.server_requests, par.peak_in_flight, par.result.report.trials.size());
  std::printf("  speed-up over sequential time (calls x latency = %.2f s): %.1fx\n", seq_estimate,
              seq_estimate / par.wall_seconds);
  if (!sequential) return;
  request.num_threads = 1;
  const Run seq = RunOnce(fake, request, 2 * concurrency);
  std::printf("  sequential (num_threads 1): wall %.2f s, provider calls %lld, peak in flight %d\n",
              seq.wall_seconds, static_cast<long long>(seq.result.report.usage.llm_calls),
              seq.peak_in_flight);
  std::printf("  measured speed-up: %.1fx; programs identical: %s\n",
              seq.wall_seconds / par.wall_seconds,
              seq.result.dspy_json == par.result.dspy_json ? "yes" : "NO");
  if (seq.result.dspy_json != par.result.dspy_json) std::exit(2);
}

// Provider calls until the validation score first reached 100% on the instruction-only task.
void CallsToPerfect(const std::string& optimizer, ojson params, int latency_ms, int concurrency) {
  t::FakeModelServer fake(absl::Milliseconds(latency_ms), 2 * concurrency);
  OptimizeRequest request = BenchRequest(optimizer, std::move(params), '*');
  request.num_threads = concurrency;
  elexirion::llm::UsageAccount account;
  FirstPerfect sink(&account);
  const Run run = RunOnce(fake, request, 2 * concurrency, &sink, &account);
  std::printf(
      "  %-8s baseline %.2f%% -> optimized %.2f%%; calls to reach 100%%: %s; calls in the whole "
      "run: %lld; wall %.2f s\n",
      optimizer.c_str(), run.result.report.baseline_score, run.result.report.optimized_score,
      sink.calls() < 0 ? "never" : absl::StrCat(sink.calls()).c_str(),
      static_cast<long long>(run.result.report.usage.llm_calls), run.wall_seconds);
}

}  // namespace

int main(int argc, char** argv) {
  int latency_ms = 50;
  int concurrency = 32;
  std::string scenario = "all";
  bool sequential = true;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--latency-ms") {
      latency_ms = std::atoi(value.c_str());
    } else if (flag == "--concurrency") {
      concurrency = std::atoi(value.c_str());
    } else if (flag == "--scenario") {
      scenario = value;
    } else if (flag == "--sequential") {
      sequential = value != "0";
    } else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 1;
    }
  }
  if (latency_ms < 0 || concurrency < 1) {
    std::fprintf(stderr, "--latency-ms must be >= 0 and --concurrency >= 1\n");
    return 1;
  }
  std::printf("optimize_bench: latency %d ms, concurrency %d\n", latency_ms, concurrency);
  if (scenario == "bfs" || scenario == "all") {
    Scenario("BootstrapFewShot, 4 demos, 50 train / 100 val", "bootstrap_few_shot",
             ojson{{"max_bootstrapped_demos", 4}}, latency_ms, concurrency, sequential);
  }
  if (scenario == "rs" || scenario == "all") {
    Scenario("BootstrapFewShotWithRandomSearch, 8 candidates, 50 train / 100 val",
             "bootstrap_random_search", ojson{{"num_candidate_programs", 8}}, latency_ms,
             concurrency, sequential);
  }
  if (scenario == "gepa" || scenario == "all") {
    Scenario("GEPA (auto light), instruction-only task, 50 train / 100 val", "gepa",
             ojson{{"auto", "light"}}, latency_ms, concurrency, sequential, '*');
  }
  if (scenario == "calls" || scenario == "all") {
    std::printf("LLM calls to reach 100%% on the instruction-only task (50 train / 100 val):\n");
    CallsToPerfect("gepa", ojson{{"auto", "light"}}, latency_ms, concurrency);
    CallsToPerfect("miprov2", ojson{{"auto", "light"}}, latency_ms, concurrency);
  }
  return 0;
}
