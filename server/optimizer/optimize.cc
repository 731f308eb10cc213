#include "server/optimizer/optimize.h"

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "server/common/status_macros.h"
#include "server/optimizer/hashing.h"
#include "server/optimizer/journal.h"
#include "server/optimizer/optimizer.h"
#include "server/optimizer/optimizers.h"
#include "server/optimizer/program_runner.h"
#include "server/optimizer/save_format.h"
#include "server/pipeline/executor.h"
#include "server/pipeline/optimized_yaml.h"

namespace elexirion::optimizer {
namespace {

ojson MetricFingerprint(const MetricSpec& m) {
  ojson parts = ojson::array();
  for (const MetricSpec& p : m.parts) parts.push_back(MetricFingerprint(p));
  ojson weights = ojson::object();
  for (const auto& [k, v] : m.weights) weights[k] = v;
  return ojson{{"kind", static_cast<int>(m.kind)},
               {"field", m.field},
               {"normalization", static_cast<int>(m.normalization)},
               {"fields", m.fields},
               {"weights", weights},
               {"pattern", m.pattern},
               {"abs", m.abs_tolerance},
               {"rel", m.rel_tolerance},
               {"judge", OptimizerContext::LmKey(m.judge)},
               {"rubric", m.rubric},
               {"criteria", m.criteria},
               {"judge_pass", m.judge_pass_threshold},
               {"mode", static_cast<int>(m.mode)},
               {"parts", parts},
               {"part_weights", m.part_weights},
               {"pass", m.pass_threshold.has_value() ? ojson(*m.pass_threshold) : ojson(nullptr)}};
}

EndReason ReasonFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kCancelled:
      return EndReason::kCancelled;
    case absl::StatusCode::kDeadlineExceeded:
      return EndReason::kDeadlineExceeded;
    default:
      return EndReason::kBudgetExhausted;
  }
}

absl::Status CheckExamples(const std::vector<Example>& examples, const char* what) {
  for (size_t i = 0; i < examples.size(); ++i) {
    if (!examples[i].input.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(what, "[", i, "].input: must be an object"));
    }
  }
  return absl::OkStatus();
}

llm::Usage Delta(const llm::Usage& now, const llm::Usage& start) {
  llm::Usage d;
  d.llm_calls = now.llm_calls - start.llm_calls;
  d.cache_hits = now.cache_hits - start.cache_hits;
  d.input_tokens = now.input_tokens - start.input_tokens;
  d.output_tokens = now.output_tokens - start.output_tokens;
  d.cost_usd = now.cost_usd - start.cost_usd;
  return d;
}

ojson ExampleResultToJson(const ExampleResult& e) {
  ojson j = ojson{{"prediction", e.prediction}, {"score", e.score}, {"passed", e.passed}};
  if (e.error) j["error"] = e.error_message;
  if (!e.feedback.empty()) j["feedback"] = e.feedback;
  return j;
}

ExampleResult ExampleResultFromJson(const ojson& j) {
  ExampleResult e;
  e.prediction = j.value("prediction", ojson::object());
  e.score = j.value("score", 0.0);
  e.passed = j.value("passed", false);
  if (j.contains("error")) {
    e.error = true;
    e.error_message = j.value("error", "");
  }
  e.feedback = j.value("feedback", "");
  return e;
}

LmSettings MergeLmForPrompt(const OptimizeRequest& request, const Program& student) {
  LmSettings lm = MergeLm(request.student_lm, request.prompt_lm);
  if (lm.provider.empty() && !student.predictors.empty()) {
    const std::string& type = student.predictors.front().step_type;
    lm.provider = request.provider_for_step ? request.provider_for_step(type)
                                            : pipeline::DefaultProviderForStepType(type);
  }
  return lm;
}

}  // namespace

const char* EndReasonName(EndReason reason) {
  switch (reason) {
    case EndReason::kCompleted:
      return "completed";
    case EndReason::kCancelled:
      return "cancelled";
    case EndReason::kBudgetExhausted:
      return "budget_exhausted";
    case EndReason::kDeadlineExceeded:
      return "deadline_exceeded";
  }
  return "unknown";
}

ojson ReportToJson(const OptimizationReport& r) {
  ojson trials = ojson::array();
  for (const TrialRecord& t : r.trials) {
    trials.push_back(ojson{{"trial", t.trial},
                           {"params", t.params},
                           {"score", t.score},
                           {"minibatch", t.minibatch},
                           {"size", t.size}});
  }
  ojson validation = ojson::array();
  for (const ExampleResult& e : r.validation_results) {
    ojson v = ojson{{"score", e.score}, {"passed", e.passed}, {"prediction", e.prediction}};
    if (e.error) v["error"] = e.error_message;
    if (!e.feedback.empty()) v["feedback"] = e.feedback;
    validation.push_back(std::move(v));
  }
  return ojson{{"optimizer", r.optimizer},
               {"seed", r.seed},
               {"baseline_score", r.baseline_score},
               {"optimized_score", r.optimized_score},
               {"validation_size", r.validation_size},
               {"train_size", r.train_size},
               {"trials", trials},
               {"usage",
                {{"llm_calls", r.usage.llm_calls},
                 {"cache_hits", r.usage.cache_hits},
                 {"input_tokens", r.usage.input_tokens},
                 {"output_tokens", r.usage.output_tokens},
                 {"cost_usd", r.usage.cost_usd}}},
               {"parse_failures", r.parse_failures},
               {"resumed_units", r.resumed_units},
               {"reference_score",
                r.reference_score.has_value() ? ojson(*r.reference_score) : ojson(nullptr)},
               {"reference_error", r.reference_error},
               {"end_reason", EndReasonName(r.end_reason)},
               {"end_message", r.end_message},
               {"wall_time_seconds", absl::ToDoubleSeconds(r.wall_time)},
               {"validation", validation}};
}

absl::StatusOr<OptimizeResult> RunOptimization(const OptimizeRequest& request,
                                               const OptimizeHooks& hooks) {
  const absl::Time start = absl::Now();
  if (request.pipeline == nullptr) return absl::InvalidArgumentError("pipeline: required");
  if (hooks.client == nullptr)
    return absl::InvalidArgumentError("optimizer: an LLM client is required");
  if (request.trainset.empty())
    return absl::InvalidArgumentError("trainset: at least one example is required");
  RETURN_IF_ERROR(CheckExamples(request.trainset, "trainset"));
  RETURN_IF_ERROR(CheckExamples(request.valset, "valset"));
  if (request.num_threads < 0) return absl::InvalidArgumentError("num_threads: must be >= 0");
  if (request.max_errors < 0) return absl::InvalidArgumentError("max_errors: must be >= 0");
  ASSIGN_OR_RETURN(Program student, BuildProgram(*request.pipeline, request.program));

  // Metric fields must be outputs of the program.
  std::set<std::string> outputs;
  for (const Predictor& p : student.predictors) {
    for (const std::string& n : p.OutputNames()) outputs.insert(n);
  }
  for (const std::string& field : MetricFields(request.metric)) {
    if (outputs.count(field) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metric: field \"", field, "\" is not an output field of the program (outputs: ",
          absl::StrJoin(outputs, ", "), ")"));
    }
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Metric> metric, CreateMetric(request.metric, hooks.client));
  ASSIGN_OR_RETURN(std::unique_ptr<Optimizer> optimizer,
                   OptimizerRegistry::Global().Create(request.optimizer, request.optimizer_params));

  // Datasets.
  std::vector<Example> trainset = request.trainset;
  std::vector<Example> valset = request.valset;
  if (valset.empty()) {
    if (trainset.size() >= 2) {
      const size_t held = std::max<size_t>(1, trainset.size() / 5);
      valset.assign(trainset.end() - static_cast<long>(held), trainset.end());
      trainset.resize(trainset.size() - held);
    } else {
      valset = trainset;
    }
  }
  RETURN_IF_ERROR(optimizer->CheckData(trainset.size(), valset.size()));

  ProgramRunner::Options runner_options;
  runner_options.client = hooks.client;
  runner_options.pipeline = request.pipeline;
  runner_options.prompts_dir = request.prompts_dir;
  runner_options.provider = request.provider_for_step;
  runner_options.adapter = request.adapter;
  runner_options.json_fallback = request.json_fallback;
  ASSIGN_OR_RETURN(std::unique_ptr<ProgramRunner> runner, ProgramRunner::Create(runner_options));

  llm::UsageAccount local_account;
  llm::UsageAccount* account = hooks.account != nullptr ? hooks.account : &local_account;
  const llm::Usage usage_start = account->Snapshot();

  // The resume fingerprint: everything that determines the run's work.
  const std::string fingerprint = HashHex(absl::StrCat(
      request.pipeline->document.dump(), "\x1f", student.StateJson().dump(), "\x1f",
      DevsetKey(trainset), "\x1f", DevsetKey(valset), "\x1f",
      MetricFingerprint(request.metric).dump(), "\x1f",
      OptimizerRegistry::Global().Canonical(request.optimizer), "\x1f",
      request.optimizer_params.dump(), "\x1f", request.seed, "\x1f",
      OptimizerContext::LmKey(request.student_lm), "\x1f",
      OptimizerContext::LmKey(request.prompt_lm), "\x1f", AdapterKindName(request.adapter)));
  ProgressJournal journal(fingerprint, hooks.resume_from, hooks.checkpoint);

  OptimizerContext::Options co;
  co.runner = runner.get();
  co.metric = metric.get();
  co.trainset = trainset;
  co.valset = valset;
  co.student.lm = request.student_lm;
  co.student.cancel = hooks.cancel;
  co.student.account = account;
  co.student.deadline = hooks.deadline;
  co.prompt_lm = MergeLmForPrompt(request, student);
  co.num_threads = request.num_threads == 0 ? 8 : request.num_threads;
  co.max_errors = request.max_errors == 0 ? 10 : request.max_errors;
  co.seed = request.seed;
  co.events = hooks.events;
  co.journal = &journal;
  OptimizerContext ctx(std::move(co));
  ctx.set_primary_output(student.PrimaryOutputField());

  OptimizeResult result;
  OptimizationReport& report = result.report;
  report.optimizer = optimizer->name();
  report.seed = request.seed;
  report.validation_size = static_cast<int>(valset.size());
  report.train_size = static_cast<int>(trainset.size());

  // The reference program through the same memoized, journaled evaluation as the baseline
  // (a resumed run takes it from the checkpoint). A program that no longer fits the pipeline,
  // or an evaluation that fails or is stopped, leaves no score and says why.
  auto ScoreReference = [&](const std::string& dspy_json) {
    absl::StatusOr<Program> reference = ApplyDspyJson(student, dspy_json);
    if (!reference.ok()) {
      report.reference_error =
          absl::StrCat("does not fit this pipeline: ", reference.status().message());
      return;
    }
    ctx.events().OnPhase("reference", "evaluating the reference program on the validation set");
    absl::StatusOr<EvaluationResult> scored = ctx.Evaluate(*reference, valset);
    if (!scored.ok()) {
      report.reference_error = absl::StrCat("evaluation failed: ", scored.status().message());
      return;
    }
    report.reference_score = scored->score;
  };

  auto finish = [&](const Program& program,
                    std::optional<double> known_score) -> absl::StatusOr<OptimizeResult> {
    result.program = program;
    if (report.end_reason == EndReason::kCompleted) {
      ctx.events().OnPhase("final", "evaluating the optimized program on the validation set");
      // Journaled with the predictions, so a resumed finished job makes no call.
      const std::string key = absl::StrCat(
          "final/", HashHex(absl::StrCat(program.StateJson().dump(), "\x1f", DevsetKey(valset),
                                         "\x1f", OptimizerContext::LmKey(request.student_lm))));
      absl::StatusOr<EvaluationResult> final_eval;
      if (std::optional<ojson> saved = ctx.Lookup(key); saved && saved->contains("results")) {
        EvaluationResult r;
        r.score = saved->value("score", 0.0);
        for (const ojson& e : saved->at("results")) r.results.push_back(ExampleResultFromJson(e));
        final_eval = std::move(r);
      } else {
        final_eval = ctx.EvaluateFresh(program, valset);
        if (final_eval.ok()) {
          ojson results = ojson::array();
          for (const ExampleResult& e : final_eval->results)
            results.push_back(ExampleResultToJson(e));
          ctx.Record(key, ojson{{"score", final_eval->score}, {"results", results}});
        }
      }
      if (final_eval.ok()) {
        report.optimized_score = final_eval->score;
        report.validation_results = std::move(final_eval->results);
      } else if (IsStopStatus(final_eval.status())) {
        report.end_reason = ReasonFor(final_eval.status());
        report.end_message = std::string(final_eval.status().message());
        report.optimized_score = known_score.value_or(report.baseline_score);
      } else {
        return final_eval.status();
      }
    } else {
      report.optimized_score = known_score.value_or(report.baseline_score);
    }
    if (request.reference_dspy_json.has_value() && report.end_reason == EndReason::kCompleted) {
      ScoreReference(*request.reference_dspy_json);
    }
    report.trials = ctx.trials();
    report.usage = Delta(account->Snapshot(), usage_start);
    report.parse_failures = runner->parse_failures();
    report.resumed_units = journal.resumed_units();
    ojson meta = ojson{{"optimizer", report.optimizer},
                       {"seed", request.seed},
                       {"baseline_score", report.baseline_score},
                       {"validation_score", report.optimized_score}};
    result.dspy_json = ToDspyJson(program, request.pipeline->name, meta);
    ASSIGN_OR_RETURN(result.optimized_yaml,
                     pipeline::RenderOptimizedYaml(*request.pipeline, ToProgramState(program)));
    result.checkpoint = journal.Document();
    report.wall_time = absl::Now() - start;
    ctx.EmitUsage();
    return std::move(result);
  };

  // Baseline.
  ctx.events().OnPhase("baseline", "evaluating the unoptimized program on the validation set");
  absl::StatusOr<EvaluationResult> baseline = ctx.Evaluate(student, valset);
  if (!baseline.ok()) {
    if (!IsStopStatus(baseline.status())) return baseline.status();
    report.end_reason = ReasonFor(baseline.status());
    report.end_message = std::string(baseline.status().message());
    return finish(student, std::nullopt);
  }
  report.baseline_score = baseline->score;

  // The optimizer.
  absl::StatusOr<CompileResult> compiled = optimizer->Compile(student, ctx);
  if (!compiled.ok()) {
    if (!IsStopStatus(compiled.status())) return compiled.status();
    report.end_reason = ReasonFor(compiled.status());
    report.end_message = std::string(compiled.status().message());
    if (ctx.best_program().has_value()) return finish(*ctx.best_program(), ctx.best_score());
    return finish(student, report.baseline_score);
  }
  return finish(compiled->program, compiled->score);
}

}  // namespace elexirion::optimizer
