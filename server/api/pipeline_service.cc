#include <optional>
#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/jobs/optimization_runner.h"
#include "server/optimizer/program_runner.h"
#include "server/optimizer/save_format.h"
#include "server/api/proto_json.h"
#include "server/api/services.h"
#include "server/api/program_lookup.h"
#include "server/api/validation.h"
#include "server/common/logging.h"
#include "server/common/status_macros.h"
#include "server/common/thread_pool.h"
#include "server/pipeline/executor.h"
#include "server/pipeline/program.h"
#include "server/store/store.h"

namespace elexirion::api {
namespace {


// Prefixes a loader error with the request field it came from.
absl::Status InField(const std::string& field, const absl::Status& status) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(field, ": ", status.message()));
}

void FillPipeline(const store::PipelineRecord& record, const pipeline::Pipeline& parsed,
                  v1::Pipeline* out) {
  out->set_name(record.name);
  out->set_yaml(record.yaml);
  out->set_revision(record.revision);
  const int64_t micros = absl::ToUnixMicros(record.updated_at);
  out->mutable_update_time()->set_seconds(micros / 1000000);
  out->mutable_update_time()->set_nanos(static_cast<int32_t>((micros % 1000000) * 1000));
  for (const auto& step : pipeline::ListOptimizableSteps(parsed)) {
    auto* info = out->add_steps();
    info->set_name(step.name);
    info->set_type(step.type);
    info->set_signature(step.signature_text);
    info->set_instruction(step.instruction);
  }
}

absl::StatusOr<std::string> ResolvePipelineYaml(const ApiContext& api,
                                                const v1::PipelineRef& ref) {
  switch (ref.source_case()) {
    case v1::PipelineRef::kYaml:
      if (ref.yaml().empty()) return absl::InvalidArgumentError("pipeline.yaml: empty");
      return ref.yaml();
    case v1::PipelineRef::kName: {
      RETURN_IF_ERROR(ValidateResourceName("pipeline.name", ref.name()));
      auto record = api.store->GetPipeline(ref.name());
      if (absl::IsNotFound(record.status())) {
        return absl::NotFoundError(
            absl::StrCat("pipeline.name: no pipeline registered as \"", ref.name(), "\""));
      }
      if (!record.ok()) return record.status();
      return record->yaml;
    }
    default:
      return absl::InvalidArgumentError("pipeline: set yaml or name");
  }
}


void FillUsage(const llm::Usage& usage, v1::Usage* out) {
  out->set_llm_calls(usage.llm_calls);
  out->set_cache_hits(usage.cache_hits);
  out->set_input_tokens(usage.input_tokens);
  out->set_output_tokens(usage.output_tokens);
  out->set_cost_usd(usage.cost_usd);
}

v1::StepResult::Status ToProto(pipeline::StepStatus status) {
  switch (status) {
    case pipeline::StepStatus::kSucceeded:
      return v1::StepResult::STATUS_SUCCEEDED;
    case pipeline::StepStatus::kFailed:
      return v1::StepResult::STATUS_FAILED;
    case pipeline::StepStatus::kSkipped:
      return v1::StepResult::STATUS_SKIPPED;
  }
  return v1::StepResult::STATUS_UNSPECIFIED;
}

void FillResponse(const pipeline::ExecutionResult& result, bool include_prompts,
                  v1::ExecutePipelineResponse* out) {
  out->set_success(result.ok());
  if (!result.ok()) out->set_error(logging::Redact(std::string(result.status.message())));
  for (const auto& step : result.steps) {
    auto* s = out->add_steps();
    s->set_name(step.name);
    s->set_type(step.type);
    s->set_status(ToProto(step.status));
    s->set_text(step.text);
    if (step.parsed_json.has_value()) (void)JsonToValue(*step.parsed_json, s->mutable_json());
    s->set_model(step.model);
    s->set_provider(step.provider);
    FillUsage(step.usage, s->mutable_usage());
    s->set_duration_seconds(absl::ToDoubleSeconds(step.duration));
    if (include_prompts) {
      s->set_rendered_system(step.system_prompt);
      s->set_rendered_prompt(step.prompt);
    }
    for (const auto& option : step.ignored_options) s->add_ignored_options(option);
    if (!step.error.ok()) s->set_error(logging::Redact(std::string(step.error.message())));
    s->set_simulated(step.simulated);
    if (step.name == result.final_step && step.parsed_json.has_value()) {
      (void)JsonToValue(*step.parsed_json, out->mutable_final_json());
    }
  }
  out->set_final_output(result.final_output);
  FillUsage(result.usage, out->mutable_usage());
  out->set_duration_seconds(absl::ToDoubleSeconds(result.duration));
}

// ExecutePipeline runs on the execution pool; this reactor carries the call's cancellation
// to the model calls and deletes itself when the RPC is done.
class ExecuteReactor final : public grpc::ServerUnaryReactor {
 public:
  void OnCancel() override { cancel_.Cancel("client cancelled the call"); }
  void OnDone() override { delete this; }
  CancellationToken& cancel() { return cancel_; }

 private:
  CancellationToken cancel_;
};

// Runs the pipeline with an optimized program exactly as the optimizer evaluated it: every
// optimized step is a DSPy call (adapter system message with the learned instruction, demos
// as turns, signature fields), the other steps run as pipeline_ex runs them.
absl::Status ExecuteProgram(const ApiContext& api, const v1::ExecutePipelineRequest& request,
                            std::shared_ptr<const pipeline::Pipeline> pipeline,
                            const store::ProgramRecord& record, const nlohmann::json& inputs,
                            absl::Time deadline, const CancellationToken* cancel,
                            llm::UsageAccount* account, v1::ExecutePipelineResponse* response) {
  auto saved = nlohmann::json::parse(record.dspy_json, nullptr, false);
  if (!saved.is_object()) return absl::DataLossError("stored program is not a JSON object");
  optimizer::ProgramOptions program_options;
  for (auto it = saved.begin(); it != saved.end(); ++it) {
    if (it.key() == "metadata") continue;
    std::string step = it.key();
    const bool chain_of_thought = absl::EndsWith(step, ".predict");
    if (chain_of_thought) step.resize(step.size() - 8);
    step = optimizer::StepForSaveKey(*pipeline, step);
    if (chain_of_thought) program_options.kinds[step] = optimizer::PredictorKind::kChainOfThought;
    program_options.steps.push_back(step);
  }
  auto base = optimizer::BuildProgram(*pipeline, program_options);
  if (!base.ok()) return InField("program", base.status());
  auto program = optimizer::ApplyDspyJson(*base, record.dspy_json);
  if (!program.ok()) return program.status();

  optimizer::ProgramRunner::Options runner_options;
  runner_options.client = api.optimization->client;
  runner_options.pipeline = pipeline;
  runner_options.prompts_dir = api.optimization->prompts_dir;
  runner_options.provider = api.optimization->provider_for_step;
  ASSIGN_OR_RETURN(auto runner, optimizer::ProgramRunner::Create(runner_options));
  optimizer::Example example;
  example.input = optimizer::ojson::parse(inputs.dump());
  optimizer::RunConfig config;
  config.lm.provider = request.lm().provider();
  config.lm.model = request.lm().model();
  if (request.lm().has_temperature()) config.lm.temperature = request.lm().temperature();
  if (request.lm().has_max_tokens()) config.lm.max_tokens = request.lm().max_tokens();
  config.cancel = cancel;
  config.account = account;
  config.deadline = deadline;
  config.include_prompts = request.include_prompts();
  config.no_cache = request.no_cache();
  optimizer::RunOutcome outcome = runner->Run(*program, example, config);
  if (absl::IsInvalidArgument(outcome.status) && outcome.execution.steps.empty()) {
    return InField("program", outcome.status);
  }
  pipeline::ExecutionResult& result = outcome.execution;
  if (!outcome.status.ok()) result.status = outcome.status;
  FillResponse(result, request.include_prompts(), response);
  if (outcome.status.ok() && !outcome.prediction.empty()) {
    (void)JsonToValue(nlohmann::json::parse(outcome.prediction.dump()),
                      response->mutable_final_json());
  }
  return absl::OkStatus();
}

absl::Status Execute(const ApiContext& api, const v1::ExecutePipelineRequest& request,
                     absl::Time deadline, const CancellationToken* cancel,
                     v1::ExecutePipelineResponse* response) {
  if (!request.has_pipeline()) return absl::InvalidArgumentError("pipeline: required");
  ASSIGN_OR_RETURN(std::string yaml, ResolvePipelineYaml(api, request.pipeline()));
  auto parsed = pipeline::LoadPipeline(yaml, api.load_options);
  if (!parsed.ok()) return InField("pipeline.yaml", parsed.status());
  ASSIGN_OR_RETURN(nlohmann::json inputs, StructToJson(request.inputs()));

  std::optional<store::ProgramRecord> program_record;
  if (request.has_program()) {
    ASSIGN_OR_RETURN(program_record, LookupProgram(*api.store, request.program()));
    response->mutable_program()->set_name(program_record->name);
    response->mutable_program()->set_version(program_record->version);
  }
  const v1::Budget& budget = request.budget();
  if (budget.max_llm_calls() < 0) {
    return absl::InvalidArgumentError("budget.max_llm_calls: must be >= 0");
  }
  if (budget.max_usd() < 0) return absl::InvalidArgumentError("budget.max_usd: must be >= 0");
  if (budget.has_max_duration()) {
    absl::Duration d = absl::Seconds(budget.max_duration().seconds()) +
                       absl::Nanoseconds(budget.max_duration().nanos());
    if (d <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError("budget.max_duration: must be positive");
    }
    deadline = std::min(deadline, absl::Now() + d);
  }
  if (request.lm().has_temperature() &&
      (request.lm().temperature() < 0 || request.lm().temperature() > 2)) {
    return absl::InvalidArgumentError("lm.temperature: must be in [0, 2]");
  }
  llm::UsageAccount account(llm::BudgetLimits{budget.max_llm_calls(), budget.max_usd()});
  if (program_record.has_value()) {
    return ExecuteProgram(api, request, std::make_shared<const pipeline::Pipeline>(*parsed),
                          *program_record, inputs, deadline, cancel, &account, response);
  }
  pipeline::ExecuteOptions options;
  options.provider_override = request.lm().provider();
  options.model_override = request.lm().model();
  options.deadline = deadline;
  options.cancel = cancel;
  options.account = &account;
  options.include_prompts = request.include_prompts();
  options.no_cache = request.no_cache();
  auto result = api.executor->Execute(*parsed, inputs, options);
  if (!result.ok()) return result.status();
  FillResponse(*result, request.include_prompts(), response);
  return absl::OkStatus();
}

}  // namespace

ServerUnaryReactor* PipelineServiceImpl::RegisterPipeline(
    CallbackServerContext* ctx, const v1::RegisterPipelineRequest* request,
    v1::Pipeline* response) {
  return RunUnary(ctx, api_, [&]() -> absl::Status {
    const v1::Pipeline& p = request->pipeline();
    RETURN_IF_ERROR(ValidateResourceName("pipeline.name", p.name()));
    if (p.yaml().empty()) return absl::InvalidArgumentError("pipeline.yaml: required");
    auto parsed = pipeline::LoadPipeline(p.yaml(), api_.load_options);
    if (!parsed.ok()) return InField("pipeline.yaml", parsed.status());
    store::PipelineRecord record;
    record.name = p.name();
    record.yaml = p.yaml();
    ASSIGN_OR_RETURN(record, api_.store->UpsertPipeline(record));
    FillPipeline(record, *parsed, response);
    return absl::OkStatus();
  });
}

ServerUnaryReactor* PipelineServiceImpl::GetPipeline(CallbackServerContext* ctx,
                                                     const v1::GetPipelineRequest* request,
                                                     v1::Pipeline* response) {
  return RunUnary(ctx, api_, [&]() -> absl::Status {
    RETURN_IF_ERROR(ValidateResourceName("name", request->name()));
    ASSIGN_OR_RETURN(store::PipelineRecord record, api_.store->GetPipeline(request->name()));
    auto parsed = pipeline::LoadPipeline(record.yaml, api_.load_options);
    if (!parsed.ok()) return InField("stored pipeline", parsed.status());
    FillPipeline(record, *parsed, response);
    return absl::OkStatus();
  });
}

ServerUnaryReactor* PipelineServiceImpl::ListPipelines(CallbackServerContext* ctx,
                                                       const v1::ListPipelinesRequest* request,
                                                       v1::ListPipelinesResponse* response) {
  return RunUnary(ctx, api_, [&]() -> absl::Status {
    if (request->page_size() < 0 || request->page_size() > store::kMaxPageSize) {
      return absl::InvalidArgumentError(
          absl::StrCat("page_size: must be in 0..", store::kMaxPageSize));
    }
    ASSIGN_OR_RETURN(store::PipelinePage page,
                     api_.store->ListPipelines(request->page_size(), request->page_token()));
    for (const auto& record : page.pipelines) {
      auto parsed = pipeline::LoadPipeline(record.yaml, api_.load_options);
      if (!parsed.ok()) continue;  // registered under older, looser limits
      FillPipeline(record, *parsed, response->add_pipelines());
    }
    response->set_next_page_token(page.next_page_token);
    return absl::OkStatus();
  });
}

ServerUnaryReactor* PipelineServiceImpl::DeletePipeline(CallbackServerContext* ctx,
                                                        const v1::DeletePipelineRequest* request,
                                                        v1::DeletePipelineResponse*) {
  return RunUnary(ctx, api_, [&]() -> absl::Status {
    RETURN_IF_ERROR(ValidateResourceName("name", request->name()));
    return api_.store->DeletePipeline(request->name());
  });
}

ServerUnaryReactor* PipelineServiceImpl::ExecutePipeline(
    CallbackServerContext* ctx, const v1::ExecutePipelineRequest* request,
    v1::ExecutePipelineResponse* response) {
  auto* reactor = new ExecuteReactor();
  Admission::Ticket ticket;
  absl::Status status = api_.admission->AdmitUnary(&ticket);
  if (status.ok()) status = api_.auth->Authorize(*ctx);
  if (!status.ok()) {
    reactor->Finish(ToGrpcStatus(status));
    return reactor;
  }
  const absl::Time caller_deadline = absl::FromChrono(ctx->deadline());
  const absl::Time deadline =
      std::min(caller_deadline, absl::Now() + api_.default_execute_timeout);
  auto shared_ticket = std::make_shared<Admission::Ticket>(std::move(ticket));
  const ApiContext api = api_;
  bool scheduled = api_.execute_pool->TrySchedule(
      [api, request, response, reactor, deadline, caller_deadline, shared_ticket] {
        absl::Status s = Execute(api, *request, deadline, &reactor->cancel(), response);
        // A run cut short by the caller's deadline reports it in the response (the step
        // failed); the caller has given up by then, and whether its own timer or our answer
        // reached it first must not decide what it sees.
        if (s.ok() && absl::Now() >= caller_deadline) {
          s = absl::DeadlineExceededError("the caller's deadline passed before the run ended");
        }
        shared_ticket->Release();
        reactor->Finish(ToGrpcStatus(s));
      });
  if (!scheduled) {
    reactor->Finish(ToGrpcStatus(absl::ResourceExhaustedError(
        "server busy: too many pipeline executions queued; retry with backoff")));
  }
  return reactor;
}

}  // namespace elexirion::api
