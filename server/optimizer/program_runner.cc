#include "server/optimizer/program_runner.h"

#include <charconv>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "server/optimizer/py_format.h"

namespace elexirion::optimizer {
namespace {

// The marked instruction block handed to the engine (see the header comment):
//   \x1e elexirion-predictor:<run>:<index> \x1f <learned> \x1f <original static text> \x1e
constexpr char kBegin[] =
    "\x1e"
    "elexirion-predictor:";
constexpr char kSep = '\x1f';
constexpr char kEnd = '\x1e';

std::string WithoutMarkers(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c != kSep && c != kEnd) out.push_back(c);
  }
  return out;
}

std::string MarkedInstruction(uint64_t run, size_t index, const std::string& learned,
                              const std::string& original) {
  return absl::StrCat(kBegin, run, ":", index, std::string(1, kSep), WithoutMarkers(learned),
                      std::string(1, kSep), WithoutMarkers(original), std::string(1, kEnd));
}

struct ParsedMarker {
  uint64_t run = 0;
  size_t index = 0;
  std::string learned;   // interpolated
  std::string original;  // interpolated
  size_t begin = 0;      // of the block in the content
  size_t end = 0;        // one past the block
};

std::optional<ParsedMarker> FindMarker(const std::string& content) {
  const size_t begin = content.find(kBegin);
  if (begin == std::string::npos) return std::nullopt;
  const size_t ids = begin + sizeof(kBegin) - 1;
  const size_t sep1 = content.find(kSep, ids);
  if (sep1 == std::string::npos) return std::nullopt;
  const size_t sep2 = content.find(kSep, sep1 + 1);
  if (sep2 == std::string::npos) return std::nullopt;
  const size_t end = content.find(kEnd, sep2 + 1);
  if (end == std::string::npos) return std::nullopt;
  const std::string id_text = content.substr(ids, sep1 - ids);
  const size_t colon = id_text.find(':');
  if (colon == std::string::npos) return std::nullopt;
  ParsedMarker m;
  uint64_t index = 0;
  if (!absl::SimpleAtoi(id_text.substr(0, colon), &m.run) ||
      !absl::SimpleAtoi(id_text.substr(colon + 1), &index)) {
    return std::nullopt;
  }
  m.index = static_cast<size_t>(index);
  m.learned = content.substr(sep1 + 1, sep2 - sep1 - 1);
  m.original = content.substr(sep2 + 1, end - sep2 - 1);
  m.begin = begin;
  m.end = end + 1;
  return m;
}

nlohmann::json ToJson(const ojson& v) { return nlohmann::json::parse(v.dump()); }

// The step text the engine stores for a predictor's outputs.
std::string StepText(const Predictor& predictor, const ojson& outputs) {
  std::vector<std::string> names;
  for (const pipeline::SignatureField& f : predictor.signature.outputs) names.push_back(f.name);
  if (names.size() == 1) {
    auto it = outputs.find(names[0]);
    if (it == outputs.end() || it->is_null()) return "";
    return it->is_string() ? it->get<std::string>() : PyJsonDumps(*it);
  }
  ojson obj = ojson::object();
  for (const std::string& n : names) {
    auto it = outputs.find(n);
    if (it != outputs.end()) obj[n] = *it;
  }
  return PyJsonDumps(obj);
}

}  // namespace

struct ProgramRunner::RunState {
  const Program* program = nullptr;
  const Example* example = nullptr;
  const RunConfig* config = nullptr;
  // Steps with no static part get their block at the front of the prompt.
  std::vector<bool> has_static;
  absl::Mutex mu;
  std::vector<TraceStep> trace ABSL_GUARDED_BY(mu);
  ojson produced ABSL_GUARDED_BY(mu) = ojson::object();
  int parse_failures ABSL_GUARDED_BY(mu) = 0;
};

class ProgramRunner::Interceptor final : public llm::LlmClient {
 public:
  Interceptor(const ProgramRunner* runner, llm::LlmClient* inner)
      : runner_(runner), inner_(inner) {}

  void Register(uint64_t id, RunState* state) {
    absl::MutexLock lock(&mu_);
    runs_[id] = state;
  }
  void Unregister(uint64_t id) {
    absl::MutexLock lock(&mu_);
    runs_.erase(id);
  }

  absl::StatusOr<llm::LlmResponse> Complete(const llm::LlmRequest& request,
                                            const llm::CallOptions& options) override {
    if (request.messages.empty()) return inner_->Complete(request, options);
    const std::string& content = request.messages.back().content;
    std::optional<ParsedMarker> marker = FindMarker(content);
    if (!marker.has_value()) return inner_->Complete(request, options);
    RunState* state = nullptr;
    {
      absl::MutexLock lock(&mu_);
      auto it = runs_.find(marker->run);
      if (it != runs_.end()) state = it->second;
    }
    if (state == nullptr || marker->index >= state->program->predictors.size()) {
      return absl::InternalError("optimizer: a predictor call outside of its program run");
    }
    const Predictor& predictor = state->program->predictors[marker->index];

    // The prompt pipeline_ex would send for this step: the block replaced by the original
    // static text (a step without static parts had its block joined in front with "\n").
    std::string rendered = content.substr(0, marker->begin);
    rendered += marker->original;
    size_t rest = marker->end;
    if (!state->has_static[marker->index] && rest < content.size() && content[rest] == '\n') ++rest;
    rendered += content.substr(rest);

    absl::StatusOr<AdapterSignature> signature = predictor.ToAdapterSignature();
    if (!signature.ok()) return signature.status();
    signature->instructions = marker->learned;

    ojson inputs = ojson::object();
    {
      absl::MutexLock lock(&state->mu);
      for (const AdapterField& f : signature->inputs) {
        auto in = state->example->input.find(f.name);
        if (in != state->example->input.end()) {
          inputs[f.name] = *in;
          continue;
        }
        auto produced = state->produced.find(f.name);
        if (produced != state->produced.end()) {
          inputs[f.name] = *produced;
          continue;
        }
        if (f.name == "input_data") inputs[f.name] = rendered;
      }
    }

    PredictRequest predict;
    predict.signature = &*signature;
    predict.demos = &predictor.demos;
    predict.inputs = inputs;
    predict.base = request;
    predict.base.messages.clear();
    const RunConfig& config = *state->config;
    if (config.lm.temperature.has_value()) predict.base.temperature = config.lm.temperature;
    if (config.lm.max_tokens.has_value()) predict.base.max_tokens = config.lm.max_tokens;
    predict.adapter = runner_->options_.adapter;
    predict.json_fallback = runner_->options_.json_fallback;
    int failures = 0;
    absl::StatusOr<PredictResult> result = CallPredict(*inner_, predict, options, &failures);
    if (failures > 0) {
      runner_->parse_failures_.fetch_add(failures);
      absl::MutexLock lock(&state->mu);
      state->parse_failures += failures;
    }
    if (!result.ok()) return result.status();

    {
      absl::MutexLock lock(&state->mu);
      state->trace.push_back(TraceStep{predictor.name, inputs, result->outputs});
      for (auto it = result->outputs.begin(); it != result->outputs.end(); ++it) {
        state->produced[it.key()] = it.value();
      }
    }
    llm::LlmResponse response = result->last_response;
    response.text = StepText(predictor, result->outputs);
    response.cache_hit = result->usage.llm_calls == 0;
    response.input_tokens = result->usage.input_tokens;
    response.output_tokens = result->usage.output_tokens;
    response.cost_usd = result->usage.cost_usd;
    return response;
  }

 private:
  const ProgramRunner* runner_;
  llm::LlmClient* inner_;
  absl::Mutex mu_;
  std::map<uint64_t, RunState*> runs_ ABSL_GUARDED_BY(mu_);
};

ProgramRunner::ProgramRunner(Options options) : options_(std::move(options)) {}
ProgramRunner::~ProgramRunner() = default;

absl::StatusOr<std::unique_ptr<ProgramRunner>> ProgramRunner::Create(Options options) {
  if (options.client == nullptr)
    return absl::InvalidArgumentError("ProgramRunner: client required");
  if (options.pipeline == nullptr) {
    return absl::InvalidArgumentError("ProgramRunner: pipeline required");
  }
  std::unique_ptr<ProgramRunner> runner(new ProgramRunner(std::move(options)));
  for (const auto& step : pipeline::ListOptimizableSteps(*runner->options_.pipeline)) {
    runner->has_instruction_parts_[step.name] = step.static_part_count > 0;
  }
  runner->interceptor_ = std::make_unique<Interceptor>(runner.get(), runner->options_.client);
  pipeline::PipelineExecutor::Options exec;
  exec.client = runner->interceptor_.get();
  exec.prompts_dir = runner->options_.prompts_dir;
  if (runner->options_.provider) exec.provider = runner->options_.provider;
  if (runner->options_.clock != nullptr) exec.clock = runner->options_.clock;
  auto executor = pipeline::PipelineExecutor::Create(std::move(exec));
  if (!executor.ok()) return executor.status();
  runner->executor_ = std::move(*executor);
  return runner;
}

RunOutcome ProgramRunner::Run(const Program& program, const Example& example,
                              const RunConfig& config) const {
  RunOutcome out;
  const pipeline::Pipeline& pipe = *options_.pipeline;
  RunState state;
  state.program = &program;
  state.example = &example;
  state.config = &config;
  const uint64_t id = next_run_id_.fetch_add(1);
  pipeline::ProgramState marked;
  for (size_t i = 0; i < program.predictors.size(); ++i) {
    const Predictor& p = program.predictors[i];
    const pipeline::Step* step = pipe.FindStep(p.name);
    if (step == nullptr || !step->IsOptimizable()) {
      out.status = absl::InvalidArgumentError(
          absl::StrCat("program: step \"", p.name, "\" is not an optimizable step of pipeline \"",
                       pipe.name, "\""));
      return out;
    }
    auto parts = has_instruction_parts_.find(p.name);
    state.has_static.push_back(parts != has_instruction_parts_.end() && parts->second);
    pipeline::StepProgram sp;
    sp.instruction =
        MarkedInstruction(id, i, p.signature.instructions, pipeline::StaticInstruction(*step));
    marked.steps[p.name] = std::move(sp);
  }
  pipeline::ExecuteOptions exec;
  exec.program = &marked;
  exec.provider_override = config.lm.provider;
  exec.model_override = config.lm.model;
  exec.deadline = config.deadline;
  exec.cancel = config.cancel;
  exec.account = config.account;
  exec.rollout_id = config.rollout_id;
  exec.include_prompts = config.include_prompts;
  exec.no_cache = config.no_cache;

  interceptor_->Register(id, &state);
  absl::StatusOr<pipeline::ExecutionResult> result =
      executor_->Execute(pipe, ToJson(example.input), exec);
  interceptor_->Unregister(id);

  absl::MutexLock lock(&state.mu);
  out.parse_failures = state.parse_failures;
  out.trace = std::move(state.trace);
  if (!result.ok()) {
    out.status = result.status();
    return out;
  }
  out.usage = result->usage;
  out.final_output = result->final_output;
  out.status = result->status;
  out.execution = *result;
  if (!out.status.ok()) return out;
  // The last predictor's fields first, then earlier predictors' fields it does not define.
  for (auto step = out.trace.rbegin(); step != out.trace.rend(); ++step) {
    for (auto it = step->outputs.begin(); it != step->outputs.end(); ++it) {
      if (!out.prediction.contains(it.key())) out.prediction[it.key()] = it.value();
    }
  }
  return out;
}

}  // namespace elexirion::optimizer
