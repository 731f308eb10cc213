#include "server/jobs/optimization_runner.h"

#include <functional>
#include <optional>
#include <set>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "nlohmann/json.hpp"
#include "server/common/logging.h"
#include "server/common/status_macros.h"
#include "server/jobs/provider_outage.h"
#include "server/jobs/work_estimate.h"
#include "server/optimizer/optimizer.h"

namespace elexirion::jobs {
namespace {

using ojson = nlohmann::ordered_json;

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  return google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

absl::StatusOr<ojson> ProtoToJson(const google::protobuf::Message& message,
                                  const std::string& field) {
  std::string text;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  auto status = google::protobuf::util::MessageToJsonString(message, &text, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", status.message().ToString()));
  }
  // Through nlohmann::json (sorted keys): protobuf iterates map fields (Struct) in an order
  // that differs between processes, and the checkpoint fingerprint of a resumed job must
  // match the one its first attempt computed in another process.
  return ojson::parse(nlohmann::json::parse(text).dump());
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
          ojson json = {
              {"id", record.id},
              {"input", ojson::parse(record.input_json, nullptr, false)},
              {"expected_output", ojson::parse(record.expected_output_json, nullptr, false)}};
          ASSIGN_OR_RETURN(
              optimizer::Example example,
              optimizer::ExampleFromJson(json, absl::StrCat(field, ".dataset[", record.id, "]")));
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

// Streams optimizer progress into the job's events. Besides the optimizer's own usage
// snapshots it publishes an ETA snapshot (a `usage` event: JobProgress with eta_seconds) at
// each phase change and every kEtaStep of estimated work, at most one per kEtaMinInterval
// between phase changes, so watchers see a moving ETA without an event per LLM call, and a
// batch of parallel calls that end together does not turn into a burst of snapshots (each
// one is an event written to every watcher).
class JobEventSink final : public optimizer::EventSink {
 public:
  JobEventSink(JobContext& ctx, WorkEstimate::Plan plan)
      : ctx_(ctx), started_(absl::Now()), estimate_(plan) {
    absl::MutexLock lock(&mu_);
    progress_.set_trials_total(estimate_.trials_total());
  }

  void OnPhase(std::string_view phase, std::string_view detail) override {
    std::optional<v1::ProgressEvent> eta;
    {
      absl::MutexLock lock(&mu_);
      estimate_.OnPhase(phase, detail);
      eta = EtaSnapshot(/*force=*/true);
    }
    if (eta.has_value()) Emit(*eta);
  }
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
    std::optional<v1::ProgressEvent> eta;
    {
      absl::MutexLock lock(&mu_);
      progress_.set_trials_done(std::max(progress_.trials_done(), trial));
      estimate_.OnTrialFinished(trial);
      eta = EtaSnapshot(/*force=*/false);
    }
    Emit(event);
    if (eta.has_value()) Emit(*eta);
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
  // One event per batch of examples decided together: the event carries only totals, and
  // the examples of a parallel window are decided at one moment, so per-example events would
  // arrive as a burst (written to every watcher) that says no more than its last one.
  void OnBootstrap(const optimizer::BootstrapEvent& b) override {
    if (!b.last_of_batch) {
      absl::MutexLock lock(&mu_);
      estimate_.OnBootstrap(b.done, b.total, b.accepted_total, b.needed);
      return;
    }
    v1::ProgressEvent event;
    auto* e = event.mutable_bootstrap();
    e->set_step(b.label);
    e->set_done(b.done);
    e->set_total(b.total);
    e->set_accepted(b.accepted_total);
    std::optional<v1::ProgressEvent> eta;
    {
      absl::MutexLock lock(&mu_);
      estimate_.OnBootstrap(b.done, b.total, b.accepted_total, b.needed);
      eta = EtaSnapshot(/*force=*/false);
    }
    Emit(event);
    if (eta.has_value()) Emit(*eta);
  }
  void OnIteration(const optimizer::IterationEvent& it) override {
    v1::ProgressEvent event;
    auto* e = event.mutable_iteration();
    e->set_optimizer(it.optimizer);
    e->set_iteration(it.iteration);
    e->set_kind(it.kind);
    for (int p : it.parents) e->add_parents(p);
    e->set_candidate(it.candidate);
    e->set_accepted(it.accepted);
    for (const std::string& c : it.components) e->add_components(c);
    e->set_minibatch_size(it.minibatch_size);
    e->set_minibatch_score_before(it.minibatch_score_before);
    e->set_minibatch_score_after(it.minibatch_score_after);
    if (it.full_score.has_value()) e->set_full_score(*it.full_score);
    e->set_pool_size(it.pool_size);
    e->set_pareto_front_size(it.pareto_front_size);
    e->set_metric_calls(it.metric_calls);
    e->set_max_metric_calls(it.max_metric_calls);
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
      UpdateEta();
      *event.mutable_usage() = progress_;
    }
    Emit(event);
  }

  // The job paused for its provider (or a probe failed): an event, and the pause in the
  // progress GetJob shows until it ends. `persist` runs once the progress shows the pause and
  // before the event goes out, so a watcher that sees the event and then asks GetJob finds
  // the pause there too.
  void OnProviderWait(const ProviderOutageGate::Wait& w, const std::function<void()>& persist) {
    v1::ProgressEvent event;
    v1::ProviderWait* p = event.mutable_provider_wait();
    p->set_reason(w.reason);
    *p->mutable_since() = ToTimestamp(w.since);
    *p->mutable_next_probe() = ToTimestamp(w.next_probe);
    *p->mutable_give_up_at() = ToTimestamp(w.give_up_at);
    p->set_probes(w.probes);
    {
      absl::MutexLock lock(&mu_);
      *progress_.mutable_provider_wait() = *p;
    }
    persist();
    Emit(event);
  }
  void OnProviderResumed(absl::Time since, absl::Duration waited,
                         const std::function<void()>& persist) {
    v1::ProgressEvent event;
    *event.mutable_provider_resumed()->mutable_since() = ToTimestamp(since);
    event.mutable_provider_resumed()->set_waited_seconds(absl::ToDoubleSeconds(waited));
    {
      absl::MutexLock lock(&mu_);
      progress_.clear_provider_wait();
    }
    persist();
    Emit(event);
  }

  // The work is done: the last snapshot says so (ETA 0).
  void Finish() {
    v1::ProgressEvent event;
    {
      absl::MutexLock lock(&mu_);
      progress_.clear_provider_wait();  // a deadline or cancel may end a pause
      estimate_.Finish();
      UpdateEta();
      *event.mutable_usage() = progress_;
    }
    Emit(event);
  }

  v1::JobProgress progress() const {
    absl::MutexLock lock(&mu_);
    return progress_;
  }

 private:
  // Publish an ETA snapshot every this much of the estimated work,
  static constexpr double kEtaStep = 0.05;
  // but not sooner than this after the previous one (phase changes excepted).
  static constexpr absl::Duration kEtaMinInterval = absl::Milliseconds(250);

  void UpdateEta() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    progress_.set_trials_total(estimate_.trials_total());
    progress_.set_eta_seconds(estimate_.EtaSeconds(absl::Now() - started_));
  }

  // A snapshot when the estimate moved a step since the last one (or `force`).
  std::optional<v1::ProgressEvent> EtaSnapshot(bool force) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const double fraction = estimate_.fraction();
    const absl::Time now = absl::Now();
    if (!force &&
        (fraction < last_eta_fraction_ + kEtaStep || now - last_eta_time_ < kEtaMinInterval)) {
      return std::nullopt;
    }
    last_eta_fraction_ = fraction;
    last_eta_time_ = now;
    UpdateEta();
    v1::ProgressEvent event;
    *event.mutable_usage() = progress_;
    return event;
  }

  void Emit(const v1::ProgressEvent& event) {
    absl::Status s = ctx_.Emit(event);
    if (!s.ok() && !absl::IsAborted(s)) {
      logging::Warning("could not record a progress event",
                       {{"job_id", ctx_.job().id}, {"error", std::string(s.message())}});
    }
  }

  JobContext& ctx_;
  // ETA is measured over this attempt: earlier attempts' time says nothing about this one's
  // rate.
  const absl::Time started_;
  mutable absl::Mutex mu_;
  v1::JobProgress progress_ ABSL_GUARDED_BY(mu_);
  WorkEstimate estimate_ ABSL_GUARDED_BY(mu_);
  double last_eta_fraction_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_eta_time_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

// The work plan of a request, for the ETA: dataset sizes as RunOptimization will split them,
// and the trial count of trial-based optimizers (MIPROv2's is known only at its search).
WorkEstimate::Plan PlanFor(const optimizer::OptimizeRequest& request, const v1::OptimizerSpec& spec,
                           bool reference) {
  WorkEstimate::Plan plan;
  int train = static_cast<int>(request.trainset.size());
  int validation = static_cast<int>(request.valset.size());
  if (validation == 0) {
    validation = train >= 2 ? std::max(1, train / 5) : train;
    if (train >= 2) train -= validation;
  }
  plan.train_size = train;
  plan.validation_size = validation;
  plan.reference = reference;
  switch (spec.kind_case()) {
    case v1::OptimizerSpec::kBootstrapRandomSearch: {
      const int candidates = spec.bootstrap_random_search().num_candidate_programs();
      // Three fixed seeds (zero-shot, labeled only, unshuffled) before the random ones.
      plan.trials_total = (candidates > 0 ? candidates : 16) + 3;
      break;
    }
    case v1::OptimizerSpec::kCopro: {
      const int breadth = spec.copro().breadth() > 0 ? spec.copro().breadth() : 10;
      const int depth = spec.copro().depth() > 0 ? spec.copro().depth() : 3;
      plan.trials_total = breadth * depth;
      break;
    }
    default:
      break;
  }
  return plan;
}

// Saves at most every kCheckpointInterval: the journal records every finished unit (down to
// one bootstrap attempt) and rewriting the growing document for each would cost quadratic
// store traffic. A crash loses at most that interval of finished work, which the persistent
// LLM cache still answers without provider calls.
class JobCheckpointSink final : public optimizer::CheckpointSink {
 public:
  static constexpr absl::Duration kCheckpointInterval = absl::Milliseconds(250);

  JobCheckpointSink(JobContext& ctx, const JobEventSink& events)
      : ctx_(ctx), events_(events), last_document_(ctx.checkpoint()) {}
  void Save(const ojson& checkpoint) override {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    if (now - last_save_ < kCheckpointInterval) return;
    last_save_ = now;
    last_document_ = checkpoint.dump();
    (void)ctx_.Checkpoint(last_document_, events_.progress());
  }
  // Persists the live progress now (a provider pause starting or ending), with the resume
  // state last saved.
  void SaveProgress() {
    absl::MutexLock lock(&mu_);
    (void)ctx_.Checkpoint(last_document_, events_.progress());
  }

 private:
  JobContext& ctx_;
  const JobEventSink& events_;
  absl::Mutex mu_;
  absl::Time last_save_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::string last_document_ ABSL_GUARDED_BY(mu_);
};

// Promote when there is no production version, when the request does not ask for a
// comparison, or when the new program scores strictly higher than the production version on
// this job's validation set. Anything that prevents a fair comparison (the production program
// no longer fits the pipeline, the run ended early, production changed meanwhile) keeps the
// current production version; the reason is logged.
bool Promote(const JobContext& ctx, const std::optional<store::ProgramRecord>& production,
             bool promote_if_better, const optimizer::OptimizationReport& report) {
  if (!production.has_value() || !promote_if_better) return true;
  std::string why_not;
  if (!report.reference_score.has_value()) {
    why_not = report.reference_error.empty()
                  ? absl::StrCat("the run ended early (",
                                 optimizer::EndReasonName(report.end_reason), ")")
                  : absl::StrCat("production v", production->version, " ", report.reference_error);
  } else if (!(report.optimized_score > *report.reference_score)) {
    why_not = absl::StrCat("not better than production v", production->version, " on this ",
                           "validation set (", report.optimized_score, " vs ",
                           *report.reference_score, ")");
  } else if (auto now = ctx.CurrentProduction();
             !now.has_value() || now->version != production->version) {
    why_not = absl::StrCat("production changed from v", production->version, " while the job ran");
  }
  logging::Info(why_not.empty() ? "promoting the new program" : "not promoting the new program",
                {{"job_id", ctx.job().id},
                 {"production_version", production->version},
                 {"score", report.optimized_score},
                 {"production_score", report.reference_score.value_or(-1)},
                 {"reason", why_not}});
  return why_not.empty();
}

class OptimizationRunner final : public JobRunner {
 public:
  explicit OptimizationRunner(OptimizationEnvironment env) : env_(std::move(env)) {}

  absl::StatusOr<RunOutcome> Run(JobContext& ctx) override {
    const v1::OptimizeModuleRequest& request = ctx.request();
    ASSIGN_OR_RETURN(optimizer::OptimizeRequest optimize, BuildOptimizeRequest(request, env_));
    const bool promote_if_better = !request.has_promote_if_better() || request.promote_if_better();
    // The production version is scored on this job's validation set (its stored score comes
    // from another job's validation set, so it is not comparable).
    const std::optional<store::ProgramRecord> production = ctx.CurrentProduction();
    if (production.has_value() && promote_if_better) {
      optimize.reference_dspy_json = production->dspy_json;
    }
    JobEventSink events(
        ctx, PlanFor(optimize, request.optimizer(), optimize.reference_dspy_json.has_value()));
    JobCheckpointSink checkpoints(ctx, events);
    const v1::Budget& budget = request.budget();
    llm::UsageAccount account(llm::BudgetLimits{budget.max_llm_calls(), budget.max_usd()});
    // A provider outage pauses the job (see provider_outage.h) instead of failing examples.
    ProviderOutageGate::Options gate_options;
    gate_options.client = env_.client;
    gate_options.max_outage = env_.max_provider_outage;
    gate_options.first_probe = env_.provider_probe_interval;
    gate_options.on_wait = [&](const ProviderOutageGate::Wait& w) {
      logging::Warning("job paused: provider unavailable",
                       {{"job_id", ctx.job().id},
                        {"probes", w.probes},
                        {"next_probe_in_s", absl::ToDoubleSeconds(w.next_probe - absl::Now())},
                        {"error", w.reason}});
      events.OnProviderWait(w, [&] { checkpoints.SaveProgress(); });
    };
    gate_options.on_resume = [&](absl::Time since, absl::Duration waited) {
      logging::Info("job resumed: provider answered",
                    {{"job_id", ctx.job().id}, {"waited_s", absl::ToDoubleSeconds(waited)}});
      events.OnProviderResumed(since, waited, [&] { checkpoints.SaveProgress(); });
    };
    ProviderOutageGate gate(std::move(gate_options));
    optimizer::OptimizeHooks hooks;
    hooks.client = &gate;
    hooks.events = &events;
    hooks.cancel = &ctx.cancel();
    hooks.account = &account;
    hooks.checkpoint = &checkpoints;
    if (budget.has_max_duration()) {
      // Measured from the job's first start, so a resumed job keeps its original limit.
      const absl::Time started =
          ctx.job().started_at != store::kUnsetTime ? ctx.job().started_at : absl::Now();
      hooks.deadline = started + absl::Seconds(budget.max_duration().seconds()) +
                       absl::Nanoseconds(budget.max_duration().nanos());
    }
    ojson resume;
    if (!ctx.checkpoint().empty()) {
      resume = ojson::parse(ctx.checkpoint(), nullptr, false);
      if (!resume.is_discarded()) hooks.resume_from = &resume;
    }
    absl::StatusOr<optimizer::OptimizeResult> run = optimizer::RunOptimization(optimize, hooks);
    // An outage past jobs.max_provider_outage fails the job with that message, whatever the
    // optimizer made of the calls that were refused.
    if (std::optional<absl::Status> outage = gate.failure(); outage.has_value()) return *outage;
    if (!run.ok()) return run.status();
    optimizer::OptimizeResult& result = *run;
    events.Finish();
    const optimizer::OptimizationReport& report = result.report;
    if (hooks.resume_from != nullptr) {
      // A resumed attempt that took nothing from its checkpoint redid finished work: worth a
      // line in the log.
      logging::Info("resumed job finished", {{"job_id", ctx.job().id},
                                             {"attempt", ctx.job().attempt},
                                             {"resumed_units", report.resumed_units}});
    }

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
    program.pipeline_name = !request.pipeline().registered_name().empty()
                                ? request.pipeline().registered_name()
                            : !request.pipeline().name().empty() ? request.pipeline().name()
                                                                 : optimize.pipeline->name;
    program.optimizer = OptimizerName(request.optimizer());
    program.dspy_json = result.dspy_json;
    program.optimized_yaml = result.optimized_yaml;
    nlohmann::json scores = {{"baseline", report.baseline_score},
                             {"validation", report.optimized_score},
                             {"validation_size", report.validation_size},
                             {"train_size", report.train_size}};
    if (production.has_value() && report.reference_score.has_value()) {
      scores["production_validation"] = *report.reference_score;
      scores["production_version"] = production->version;
    }
    scores["report"] = nlohmann::json::parse(optimizer::ReportToJson(report).dump());
    program.scores_json = scores.dump();
    outcome.program = program;
    outcome.promote = Promote(ctx, production, promote_if_better, report);
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
    case v1::OptimizerSpec::kGepa:
      return "gepa";
    case v1::OptimizerSpec::kSimba:
      return "simba";
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
        "bootstrap_random_search, copro, miprov2, gepa, simba");
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
  ASSIGN_OR_RETURN(
      std::unique_ptr<optimizer::Optimizer> chosen,
      optimizer::OptimizerRegistry::Global().Create(request.optimizer, request.optimizer_params));
  // As RunOptimization holds out a fifth of the trainset when no valset is given.
  const size_t train = request.trainset.size();
  const size_t held = request.valset.empty() && train >= 2 ? std::max<size_t>(1, train / 5) : 0;
  RETURN_IF_ERROR(chosen->CheckData(
      train - held, request.valset.empty() ? std::max<size_t>(held, 1) : request.valset.size()));
  return absl::OkStatus();
}

std::unique_ptr<JobRunner> CreateOptimizationRunner(OptimizationEnvironment env) {
  return std::make_unique<OptimizationRunner>(std::move(env));
}

}  // namespace elexirion::jobs
