#include "server/optimizer/evaluate.h"

#include <atomic>
#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "server/optimizer/parallel.h"

namespace elexirion::optimizer {

absl::Status StopStatus(const RunConfig& config) {
  if (config.cancel != nullptr && config.cancel->IsCancelled()) {
    return absl::CancelledError(config.cancel->reason());
  }
  if (absl::Now() >= config.deadline) return absl::DeadlineExceededError("deadline exceeded");
  if (config.account != nullptr) {
    absl::Status budget = config.account->CheckBudget();
    if (!budget.ok()) return budget;
  }
  return absl::OkStatus();
}

bool IsStopStatus(const absl::Status& status) {
  return status.code() == absl::StatusCode::kCancelled ||
         status.code() == absl::StatusCode::kDeadlineExceeded ||
         (status.code() == absl::StatusCode::kResourceExhausted &&
          absl::StartsWith(status.message(), "budget exhausted"));
}

double PercentScore(double sum, size_t n) {
  if (n == 0) return 0;
  return std::nearbyint(100.0 * sum / static_cast<double>(n) * 100.0) / 100.0;
}

std::vector<absl::StatusOr<EvaluationResult>> EvaluateMany(
    const ProgramRunner& runner, const Metric& metric, const std::vector<const Program*>& programs,
    const std::vector<Example>& devset, const RunConfig& config, const EvaluateOptions& options) {
  const size_t n = devset.size();
  struct PerProgram {
    EvaluationResult result;
    std::atomic<int> errors{0};
    std::atomic<bool> aborted{false};
    absl::Mutex mu;
    std::string first_error ABSL_GUARDED_BY(mu);
  };
  std::vector<std::unique_ptr<PerProgram>> state;
  for (size_t p = 0; p < programs.size(); ++p) {
    state.push_back(std::make_unique<PerProgram>());
    state.back()->result.results.resize(n);
  }
  absl::Mutex stop_mu;
  absl::Status stop ABSL_GUARDED_BY(stop_mu);
  std::atomic<bool> stopped{false};
  auto set_stop = [&](absl::Status s) {
    absl::MutexLock lock(&stop_mu);
    if (stop.ok()) stop = std::move(s);
    stopped.store(true);
  };

  auto task = [&](size_t k) {
    const size_t p = k / (n == 0 ? 1 : n);
    const size_t i = k % (n == 0 ? 1 : n);
    PerProgram& st = *state[p];
    if (st.aborted.load() || stopped.load()) return;
    absl::Status s = StopStatus(config);
    if (!s.ok()) {
      set_stop(s);
      return;
    }
    ExampleResult& r = st.result.results[i];
    RunOutcome outcome = runner.Run(*programs[p], devset[i], config);
    absl::Status failure = outcome.status;
    if (outcome.parse_failures > 0) {
      absl::MutexLock lock(&st.mu);
      st.result.parse_failures += outcome.parse_failures;
    }
    if (failure.ok()) {
      r.prediction = std::move(outcome.prediction);
      MetricContext ctx;
      ctx.primary_output = options.primary_output;
      ctx.cancel = config.cancel;
      ctx.account = config.account;
      ctx.deadline = config.deadline;
      absl::StatusOr<MetricValue> value = metric.Score(devset[i], r.prediction, ctx);
      if (value.ok()) {
        r.score = value->score;
        r.passed = value->passed;
        r.feedback = std::move(value->feedback);
        return;
      }
      failure = value.status();
    }
    // A failure caused by the run's own cancellation, budget or deadline stops everything.
    absl::Status why = StopStatus(config);
    if (!why.ok() || IsStopStatus(failure)) {
      set_stop(why.ok() ? failure : why);
      return;
    }
    r.error = true;
    r.error_message = std::string(failure.message());
    r.score = options.failure_score;
    {
      absl::MutexLock lock(&st.mu);
      if (st.first_error.empty()) st.first_error = failure.ToString();
    }
    if (st.errors.fetch_add(1) + 1 >= options.max_errors) st.aborted.store(true);
  };
  ParallelFor(programs.size() * n, options.num_threads, task, [&] { return stopped.load(); });

  std::vector<absl::StatusOr<EvaluationResult>> out;
  absl::Status stop_status;
  {
    absl::MutexLock lock(&stop_mu);
    stop_status = stop;
  }
  for (size_t p = 0; p < programs.size(); ++p) {
    PerProgram& st = *state[p];
    if (!stop_status.ok()) {
      out.push_back(stop_status);
      continue;
    }
    if (st.aborted.load()) {
      absl::MutexLock lock(&st.mu);
      out.push_back(absl::AbortedError(absl::StrCat("evaluation cancelled after ", st.errors.load(),
                                                    " errors (max_errors=", options.max_errors,
                                                    "); first error: ", st.first_error)));
      continue;
    }
    double sum = 0;
    for (const ExampleResult& r : st.result.results) sum += r.score;
    st.result.errors = st.errors.load();
    st.result.score = PercentScore(sum, n);
    out.push_back(std::move(st.result));
  }
  return out;
}

absl::StatusOr<EvaluationResult> Evaluate(const ProgramRunner& runner, const Metric& metric,
                                          const Program& program,
                                          const std::vector<Example>& devset,
                                          const RunConfig& config, const EvaluateOptions& options) {
  std::vector<absl::StatusOr<EvaluationResult>> results =
      EvaluateMany(runner, metric, {&program}, devset, config, options);
  return std::move(results[0]);
}

}  // namespace elexirion::optimizer
