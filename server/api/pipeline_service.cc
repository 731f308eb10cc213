#include <regex>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/api/program_convert.h"
#include "server/api/proto_json.h"
#include "server/api/services.h"
#include "server/common/logging.h"
#include "server/common/status_macros.h"
#include "server/common/thread_pool.h"
#include "server/pipeline/executor.h"
#include "server/pipeline/program.h"
#include "server/store/store.h"

namespace elexirion::api {
namespace {

absl::Status ValidateName(const std::string& field, const std::string& name) {
  static const std::regex kName("[a-z0-9_-]{1,64}");
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  if (!std::regex_match(name, kName)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must match [a-z0-9_-]{1,64}, got \"", name.substr(0, 80), "\""));
  }
  return absl::OkStatus();
}

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
      RETURN_IF_ERROR(ValidateName("pipeline.name", ref.name()));
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

absl::StatusOr<store::ProgramRecord> ResolveProgram(const ApiContext& api,
                                                    const v1::ProgramRef& ref) {
  RETURN_IF_ERROR(ValidateName("program.name", ref.name()));
  absl::StatusOr<store::ProgramRecord> record;
  switch (ref.selector_case()) {
    case v1::ProgramRef::kVersion:
      if (ref.version() <= 0) return absl::InvalidArgumentError("program.version: must be > 0");
      record = api.store->GetProgram(ref.name(), ref.version());
      break;
    case v1::ProgramRef::kLabel:
      if (ref.label() == "latest") {
        record = api.store->GetLatestProgram(ref.name());
        break;
      }
      if (ref.label() != "production") {
        return absl::InvalidArgumentError(absl::StrCat(
            "program.label: must be \"latest\" or \"production\", got \"", ref.label(), "\""));
      }
      [[fallthrough]];
    default:
      record = api.store->GetProductionProgram(ref.name());
      if (absl::IsNotFound(record.status())) record = api.store->GetLatestProgram(ref.name());
  }
  if (absl::IsNotFound(record.status())) {
    return absl::NotFoundError(absl::StrCat("program: no such program version of \"",
                                            ref.name(), "\""));
  }
  return record;
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

absl::Status Execute(const ApiContext& api, const v1::ExecutePipelineRequest& request,
                     absl::Time deadline, const CancellationToken* cancel,
                     v1::ExecutePipelineResponse* response) {
  if (!request.has_pipeline()) return absl::InvalidArgumentError("pipeline: required");
  ASSIGN_OR_RETURN(std::string yaml, ResolvePipelineYaml(api, request.pipeline()));
  auto parsed = pipeline::LoadPipeline(yaml, api.load_options);
  if (!parsed.ok()) return InField("pipeline.yaml", parsed.status());
  ASSIGN_OR_RETURN(nlohmann::json inputs, StructToJson(request.inputs()));

  pipeline::ProgramState program;
  pipeline::ExecuteOptions options;
  if (request.has_program()) {
    ASSIGN_OR_RETURN(store::ProgramRecord record, ResolveProgram(api, request.program()));
    ASSIGN_OR_RETURN(program, ProgramStateFromDspyJson(record.dspy_json));
    RETURN_IF_ERROR(InField("program", pipeline::ValidateProgram(*parsed, program)));
    options.program = &program;
    response->mutable_program()->set_name(record.name);
    response->mutable_program()->set_version(record.version);
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
    RETURN_IF_ERROR(ValidateName("pipeline.name", p.name()));
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
    RETURN_IF_ERROR(ValidateName("name", request->name()));
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
    RETURN_IF_ERROR(ValidateName("name", request->name()));
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
  absl::Time deadline = absl::FromChrono(ctx->deadline());
  deadline = std::min(deadline, absl::Now() + api_.default_execute_timeout);
  auto shared_ticket = std::make_shared<Admission::Ticket>(std::move(ticket));
  const ApiContext api = api_;
  bool scheduled = api_.execute_pool->TrySchedule(
      [api, request, response, reactor, deadline, shared_ticket] {
        absl::Status s = Execute(api, *request, deadline, &reactor->cancel(), response);
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
