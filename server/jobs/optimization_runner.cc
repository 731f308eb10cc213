#include "server/jobs/optimization_runner.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"
#include "server/common/logging.h"
#include "server/common/status_macros.h"
#include "server/optimizer/optimizer.h"

namespace elexirion::jobs {
namespace {

using ojson = nlohmann::ordered_json;

absl::StatusOr<ojson> ProtoToJson(const google::protobuf::Message& message,
                                  const std::string& field) {
  std::string text;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  auto status = google::protobuf::util::MessageToJsonString(message, &text, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", status.message().ToString()));
  }
  return ojson::parse(text);
}

absl::Status JsonToStruct(const ojson& json, google::protobuf::Struct* out) {
  auto status = google::protobuf::util::JsonStringToMessage(json.dump(), out);
  if (!status.ok()) return absl::InternalError(status.message().ToString());
  return absl::OkStatus();
}

absl::StatusOr<std::vector<optimizer::Example>> LoadExamples(const v1::Trainset& set,
                                                             const std::string& field,
                                                             store::Store* store) {
  std::vector<optimizer::Example> out;
  switch (set.source_case()) {
    case v1::Trainset::kInline:
      for (int i = 0; i < set.inline_().examples_size(); ++i) {
        const std::string where = absl::StrCat(field, ".inline.examples[", i, "]");
        ASSIGN_OR_RETURN(ojson json, ProtoToJson(set.inline_().examples(i), where));
        ASSIGN_OR_RETURN(optimizer::Example example, optimizer::ExampleFromJson(json, where));
        out.push_back(std::move(example));
      }
      return out;
    case v1::Trainset::kJsonl:
      return optimizer::ExamplesFromJsonl(set.jsonl(), field + ".jsonl");
    case v1::Trainset::kDataset: {
      std::string token;
      do {
        auto page = store->ListExamples(set.dataset(), store::kMaxPageSize, token);
        if (absl::IsNotFound(page.status())) {
          return absl::InvalidArgumentError(
              absl::StrCat(field, ".dataset: no dataset named \"", set.dataset(), "\""));
        }
        if (!page.ok()) return page.status();
        for (const auto& record : page->examples) {
          ojson json = {{"id", record.id},
                        {"input", ojson::parse(record.input_json, nullptr, false)},
                        {"expected_output",
                         ojson::parse(record.expected_output_json, nullptr, false)}};
          ASSIGN_OR_RETURN(optimizer::Example example,
                           optimizer::ExampleFromJson(
                               json, absl::StrCat(field, ".dataset[", record.id, "]")));
          out.push_back(std::move(example));
        }
        token = page->next_page_token;
      } while (!token.empty());
      return out;
    }
    default:
      return out;
  }
}

optimizer::LmSettings ToLm(const v1::LmSpec& lm) {
  optimizer::LmSettings out;
  out.provider = lm.provider();
  out.model = lm.model();
  if (lm.has_temperature()) out.temperature = lm.temperature();
  if (lm.has_max_tokens()) out.max_tokens = lm.max_tokens();
  return out;
}

// Streams optimizer progress into the job's events.
class JobEventSink final : public optimizer::EventSink {
 public:
  explicit JobEventSink(JobContext& ctx) : ctx_(ctx) {}

  void OnTrialStarted(int trial, const ojson& params) override {
    v1::ProgressEvent event;
    event.mutable_trial_started()->set_trial(trial);
    (void)JsonToStruct(params, event.mutable_trial_started()->mutable_params());
    Emit(event);
  }
  void OnTrialFinished(int trial, const ojson& params, double score, bool minibatch) override {
    v1::ProgressEvent event;
    auto* f = event.mutable_trial_finished();
    f->set_trial(trial);
    (void)JsonToStruct(params, f->mutable_params());
    f->set_score(score);
    f->set_minibatch(minibatch);
    {
      absl::MutexLock lock(&mu_);
      progress_.set_trials_done(std::max(progress_.trials_done(), trial));
    }
    Emit(event);
  }
  void OnNewBest(int trial, double score) override {
    v1::ProgressEvent event;
    event.mutable_new_best()->set_trial(trial);
    event.mutable_new_best()->set_score(score);
    {
      absl::MutexLock lock(&mu_);
      progress_.set_best_score(score);
    }
    Emit(event);
  }
  void OnBootstrap(const optimizer::BootstrapEvent& b) override {
    v1::ProgressEvent event;
    auto* e = event.mutable_bootstrap();
    e->set_step(b.label);
    e->set_done(b.done);
    e->set_total(b.total);
    e->set_accepted(b.accepted_total);
    Emit(event);
  }
  void OnUsage(const llm::Usage& usage) override {
    v1::ProgressEvent event;
    {
      absl::MutexLock lock(&mu_);
      auto* u = progress_.mutable_usage();
      u->set_llm_calls(usage.llm_calls);
      u->set_cache_hits(usage.cache_hits);
      u->set_input_tokens(usage.input_tokens);
      u->set_output_tokens(usage.output_tokens);
      u->set_cost_usd(usage.cost_usd);
      *event.mutable_usage() = progress_;
    }
    Emit(event);
  }

  v1::JobProgress progress() const {
    absl::MutexLock lock(&mu_);
    return progress_;
  }

 private:
  void Emit(const v1::ProgressEvent& event) {
    absl::Status s = ctx_.Emit(event);
    if (!s.ok() && !absl::IsAborted(s)) {
      logging::Warning("could not record a progress event",
                       {{"job_id", ctx_.job().id}, {"error", std::string(s.message())}});
    }
  }

  JobContext& ctx_;
  mutable absl::Mutex mu_;
  v1::JobProgress progress_ ABSL_GUARDED_BY(mu_);
};

class JobCheckpointSink final : public optimizer::CheckpointSink {
 public:
  JobCheckpointSink(JobContext& ctx, const JobEventSink& events) : ctx_(ctx), events_(events) {}
  void Save(const ojson& checkpoint) override {
    (void)ctx_.Checkpoint(checkpoint.dump(), events_.progress());
  }

 private:
  JobContext& ctx_;
  const JobEventSink& events_;
};

class OptimizationRunner final : public JobRunner {
 public:
  explicit OptimizationRunner(OptimizationEnvironment env) : env_(std::move(env)) {}

  absl::StatusOr<RunOutcome> Run(JobContext& ctx) override {
    const v1::OptimizeModuleRequest& request = ctx.request();
    ASSIGN_OR_RETURN(optimizer::OptimizeRequest optimize, BuildOptimizeRequest(request, env_));
    JobEventSink events(ctx);
    JobCheckpointSink checkpoints(ctx, events);
    const v1::Budget& budget = request.budget();
    llm::UsageAccount account(llm::BudgetLimits{budget.max_llm_calls(), budget.max_usd()});
    optimizer::OptimizeHooks hooks;
    hooks.client = env_.client;
    hooks.events = &events;
    hooks.cancel = &ctx.cancel();
    hooks.account = &account;
    hooks.checkpoint = &checkpoints;
    if (budget.has_max_duration()) {
      // Measured from the job's first start, so a resumed job keeps its original limit.
      const absl::Time started = ctx.job().started_at != store::kUnsetTime
                                     ? ctx.job().started_at
                                     : absl::Now();
      hooks.deadline = started + absl::Seconds(budget.max_duration().seconds()) +
                       absl::Nanoseconds(budget.max_duration().nanos());
    }
    ojson resume;
    if (!ctx.checkpoint().empty()) {
      resume = ojson::parse(ctx.checkpoint(), nullptr, false);
      if (!resume.is_discarded()) hooks.resume_from = &resume;
    }
    ASSIGN_OR_RETURN(optimizer::OptimizeResult result,
                     optimizer::RunOptimization(optimize, hooks));
    const optimizer::OptimizationReport& report = result.report;

    RunOutcome outcome;
    switch (report.end_reason) {
      case optimizer::EndReason::kCompleted:
        outcome.end_reason = v1::END_REASON_COMPLETED;
        break;
      case optimizer::EndReason::kCancelled:
        outcome.state = store::JobState::kCancelled;
        outcome.end_reason = v1::END_REASON_CANCELLED;
        break;
      case optimizer::EndReason::kBudgetExhausted:
        outcome.end_reason = v1::END_REASON_BUDGET_EXHAUSTED;
        outcome.error = report.end_message;
        break;
      case optimizer::EndReason::kDeadlineExceeded:
        outcome.end_reason = v1::END_REASON_DEADLINE_EXCEEDED;
        outcome.error = report.end_message;
        break;
    }
    store::ProgramRecord program;
    program.pipeline_name =
        request.pipeline().name().empty() ? optimize.pipeline->name : request.pipeline().name();
    program.optimizer = OptimizerName(request.optimizer());
    program.dspy_json = result.dspy_json;
    program.optimized_yaml = result.optimized_yaml;
    program.scores_json = nlohmann::json{{"baseline", report.baseline_score},
                                         {"validation", report.optimized_score},
                                         {"validation_size", report.validation_size},
                                         {"train_size", report.train_size},
                                         {"report", nlohmann::json::parse(
                                                        optimizer::ReportToJson(report).dump())}}
                              .dump();
    outcome.program = program;
    // Promote when there is no production version, or this one scores higher on validation
    // (the production version's stored validation score).
    const bool promote_if_better =
        !request.has_promote_if_better() || request.promote_if_better();
    auto production = ctx.CurrentProduction();
    double production_score = -1;
    if (production.has_value()) {
      auto scores = nlohmann::json::parse(production->scores_json, nullptr, false);
      if (scores.is_object()) production_score = scores.value("validation", -1.0);
    }
    outcome.promote = !production.has_value() ||
                      (promote_if_better && report.optimized_score > production_score) ||
                      !promote_if_better;
    if (outcome.state == store::JobState::kCancelled) outcome.promote = false;
    outcome.progress = events.progress();
    outcome.progress.set_best_score(report.optimized_score);
    outcome.summary.set_baseline_score(report.baseline_score);
    outcome.summary.set_best_score(report.optimized_score);
    auto* usage = outcome.progress.mutable_usage();
    usage->set_llm_calls(report.usage.llm_calls);
    usage->set_cache_hits(report.usage.cache_hits);
    usage->set_input_tokens(report.usage.input_tokens);
    usage->set_output_tokens(report.usage.output_tokens);
    usage->set_cost_usd(report.usage.cost_usd);
    return outcome;
  }

 private:
  OptimizationEnvironment env_;
};

}  // namespace

std::string OptimizerName(const v1::OptimizerSpec& spec) {
  switch (spec.kind_case()) {
    case v1::OptimizerSpec::kLabeledFewShot:
      return "labeled_few_shot";
    case v1::OptimizerSpec::kBootstrapFewShot:
      return "bootstrap_few_shot";
    case v1::OptimizerSpec::kBootstrapRandomSearch:
      return "bootstrap_random_search";
    case v1::OptimizerSpec::kCopro:
      return "copro";
    case v1::OptimizerSpec::kMiprov2:
      return "miprov2";
    default:
      return "";
  }
}

absl::StatusOr<optimizer::OptimizeRequest> BuildOptimizeRequest(
    const v1::OptimizeModuleRequest& request, const OptimizationEnvironment& env) {
  optimizer::OptimizeRequest out;
  if (request.pipeline().yaml().empty()) {
    return absl::InvalidArgumentError("pipeline.yaml: required");
  }
  auto pipeline = pipeline::LoadPipeline(request.pipeline().yaml(), env.load_options);
  if (!pipeline.ok()) {
    return absl::Status(pipeline.status().code(),
                        absl::StrCat("pipeline.yaml: ", pipeline.status().message()));
  }
  out.pipeline = std::make_shared<const pipeline::Pipeline>(*std::move(pipeline));
  for (const auto& step : request.steps()) out.program.steps.push_back(step);
  if (request.trainset().source_case() == v1::Trainset::SOURCE_NOT_SET) {
    return absl::InvalidArgumentError("trainset: required (inline, dataset or jsonl)");
  }
  ASSIGN_OR_RETURN(out.trainset, LoadExamples(request.trainset(), "trainset", env.store));
  if (out.trainset.empty()) {
    return absl::InvalidArgumentError("trainset: at least one example is required");
  }
  ASSIGN_OR_RETURN(out.valset, LoadExamples(request.valset(), "valset", env.store));
  if (!request.has_metric() || request.metric().kind_case() == v1::MetricSpec::KIND_NOT_SET) {
    return absl::InvalidArgumentError("metric: required");
  }
  ASSIGN_OR_RETURN(ojson metric, ProtoToJson(request.metric(), "metric"));
  ASSIGN_OR_RETURN(out.metric, optimizer::MetricSpecFromJson(metric, "metric"));
  out.optimizer = OptimizerName(request.optimizer());
  if (out.optimizer.empty()) {
    return absl::InvalidArgumentError(
        "optimizer: choose one of labeled_few_shot, bootstrap_few_shot, "
        "bootstrap_random_search, copro, miprov2");
  }
  ASSIGN_OR_RETURN(ojson spec, ProtoToJson(request.optimizer(), "optimizer"));
  out.optimizer_params = spec.contains(out.optimizer) ? spec[out.optimizer] : ojson::object();
  out.seed = request.optimizer().seed();
  if (request.optimizer().num_threads() < 0 || request.optimizer().num_threads() > 256) {
    return absl::InvalidArgumentError("optimizer.num_threads: must be in 0..256");
  }
  out.num_threads = request.optimizer().num_threads();
  out.student_lm = ToLm(request.lm());
  out.prompts_dir = env.prompts_dir;
  out.provider_for_step = env.provider_for_step;
  return out;
}

absl::Status ValidateOptimizeRequest(const optimizer::OptimizeRequest& request,
                                     llm::LlmClient* client) {
  ASSIGN_OR_RETURN(optimizer::Program student,
                   optimizer::BuildProgram(*request.pipeline, request.program));
  std::set<std::string> outputs;
  for (const auto& p : student.predictors) {
    for (const auto& n : p.OutputNames()) outputs.insert(n);
  }
  for (const auto& field : optimizer::MetricFields(request.metric)) {
    if (outputs.count(field) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metric: field \"", field, "\" is not an output field of the program (outputs: ",
          absl::StrJoin(outputs, ", "), ")"));
    }
  }
  RETURN_IF_ERROR(optimizer::CreateMetric(request.metric, client).status());
  RETURN_IF_ERROR(optimizer::OptimizerRegistry::Global()
                      .Create(request.optimizer, request.optimizer_params)
                      .status());
  return absl::OkStatus();
}

std::unique_ptr<JobRunner> CreateOptimizationRunner(OptimizationEnvironment env) {
  return std::make_unique<OptimizationRunner>(std::move(env));
}

}  // namespace elexirion::jobs
