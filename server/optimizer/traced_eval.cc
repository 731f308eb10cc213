#include "server/optimizer/traced_eval.h"

#include <atomic>
#include <map>

#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"
#include "server/optimizer/hashing.h"
#include "server/optimizer/parallel.h"

namespace elexirion::optimizer {
namespace {

ojson RunToJson(const TracedRun& r) {
  ojson trace = ojson::array();
  for (const TraceStep& s : r.trace) {
    trace.push_back(
        ojson{{"predictor", s.predictor}, {"inputs", s.inputs}, {"outputs", s.outputs}});
  }
  return ojson{{"score", r.score},
               {"feedback", r.feedback},
               {"prediction", r.prediction},
               {"trace", trace},
               {"error", r.error}};
}

TracedRun RunFromJson(const ojson& j) {
  TracedRun r;
  r.score = j.value("score", 0.0);
  r.feedback = j.value("feedback", "");
  r.prediction = j.value("prediction", ojson::object());
  r.error = j.value("error", false);
  for (const ojson& s : j.value("trace", ojson::array())) {
    r.trace.push_back(TraceStep{s.value("predictor", ""), s.value("inputs", ojson::object()),
                                s.value("outputs", ojson::object())});
  }
  return r;
}

}  // namespace

absl::StatusOr<std::vector<TracedRun>> RunTraced(OptimizerContext& ctx,
                                                 const std::vector<TracedJob>& jobs,
                                                 const std::string& label) {
  std::string all;
  // Identical jobs run once: run one after the other, the second would be answered from the
  // LLM cache; in flight together, both would reach the provider.
  std::vector<size_t> unique;
  std::vector<size_t> source(jobs.size());
  std::map<std::string, size_t> first;
  for (size_t i = 0; i < jobs.size(); ++i) {
    const TracedJob& job = jobs[i];
    const std::string job_key =
        absl::StrCat(job.program->StateJson().dump(), "\x1e", ExampleFingerprint(*job.example),
                     "\x1e", OptimizerContext::LmKey(job.config.lm), "\x1e", job.config.rollout_id);
    absl::StrAppend(&all, job_key, "\x1f");
    auto [it, inserted] = first.emplace(job_key, unique.size());
    if (inserted) unique.push_back(i);
    source[i] = it->second;
  }
  const std::string key = absl::StrCat(label, "/traced/", HashHex(all));
  if (std::optional<ojson> saved = ctx.Lookup(key); saved && saved->is_array()) {
    std::vector<TracedRun> out;
    for (const ojson& j : *saved) out.push_back(RunFromJson(j));
    if (out.size() == jobs.size()) return out;
  }
  RETURN_IF_ERROR(ctx.CheckStop());
  std::vector<TracedRun> ran(unique.size());
  std::atomic<int> errors{0};
  const int max_errors = ctx.max_errors();
  ParallelFor(
      unique.size(), ctx.num_threads(),
      [&](size_t u) {
        const TracedJob& job = jobs[unique[u]];
        TracedRun& r = ran[u];
        RunOutcome outcome = ctx.runner().Run(*job.program, *job.example, job.config);
        r.trace = std::move(outcome.trace);
        if (!outcome.status.ok()) {
          r.error = true;
          r.feedback = absl::StrCat("The program failed: ", outcome.status.message());
          errors.fetch_add(1);
          return;
        }
        r.prediction = std::move(outcome.prediction);
        MetricContext mc;
        mc.primary_output = ctx.primary_output();
        mc.cancel = job.config.cancel;
        mc.account = job.config.account;
        mc.deadline = job.config.deadline;
        absl::StatusOr<MetricValue> value = ctx.metric().Score(*job.example, r.prediction, mc);
        if (!value.ok()) {
          r.error = true;
          r.feedback = absl::StrCat("The metric failed: ", value.status().message());
          errors.fetch_add(1);
          return;
        }
        r.score = value->score;
        r.feedback = std::move(value->feedback);
      },
      [&] { return errors.load() >= max_errors || !ctx.CheckStop().ok(); });
  // A stop (cancel, budget, deadline) makes failures meaningless: report the stop instead.
  RETURN_IF_ERROR(ctx.CheckStop());
  if (errors.load() >= max_errors) {
    return absl::AbortedError(absl::StrCat(label, ": evaluation cancelled after ", errors.load(),
                                           " errors (max_errors=", max_errors, ")"));
  }
  std::vector<TracedRun> out;
  out.reserve(jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) out.push_back(ran[source[i]]);
  ojson saved = ojson::array();
  for (const TracedRun& r : out) saved.push_back(RunToJson(r));
  ctx.Record(key, std::move(saved));
  return out;
}

absl::StatusOr<std::vector<TracedRun>> RunTracedOn(OptimizerContext& ctx, const Program& program,
                                                   const std::vector<Example>& examples,
                                                   const std::string& label) {
  std::vector<TracedJob> jobs;
  for (const Example& e : examples) jobs.push_back(TracedJob{&program, &e, ctx.student()});
  return RunTraced(ctx, jobs, label);
}

double SumScores(const std::vector<TracedRun>& runs) {
  double sum = 0;
  for (const TracedRun& r : runs) sum += r.score;
  return sum;
}

}  // namespace elexirion::optimizer
