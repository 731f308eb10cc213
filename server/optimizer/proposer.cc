#include "server/optimizer/proposer.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/common/status_macros.h"
#include "server/optimizer/hashing.h"
#include "server/optimizer/parallel.h"
#include "server/optimizer/py_format.h"
#include "server/optimizer/text_util.h"

namespace elexirion::optimizer {
namespace {

AdapterField Text(std::string name, std::string description) {
  return AdapterField{std::move(name), FieldType{}, std::move(description)};
}

AdapterSignature DatasetDescriptorSignature() {
  AdapterSignature s;
  s.instructions =
      "Look at the sample data points from a dataset and write down observations about "
      "patterns that hold for most or all of them: topics, content, syntax, length and the like. "
      "Also make an educated guess about the task the dataset is meant for. Inventive "
      "observations are welcome.";
  s.inputs = {Text("examples", "Sample data points from the dataset")};
  s.outputs = {Text("observations", "Patterns that hold for most or all of the data points")};
  return s;
}

AdapterSignature DatasetDescriptorWithPriorSignature() {
  AdapterSignature s;
  s.instructions =
      "Look at the sample data points from a dataset and write down observations about "
      "patterns that hold for most or all of them. Earlier observations are given as well: add "
      "new ones, or answer COMPLETE when the earlier observations already cover everything. "
      "Consider topics, content, syntax, length and the like, and guess what task the dataset "
      "is meant for.";
  s.inputs = {Text("examples", "Sample data points from the dataset"),
              Text("prior_observations", "Observations made earlier about the data")};
  s.outputs = {Text("observations",
                    "New patterns that hold for most or all of the data points, or COMPLETE when "
                    "there is nothing to add")};
  return s;
}

AdapterSignature ObservationSummarizerSignature() {
  AdapterSignature s;
  s.instructions =
      "Condense the observations made about a dataset into a short summary of two or three "
      "sentences that keeps only the most important points.";
  s.inputs = {Text("observations", "Observations made about the dataset")};
  s.outputs = {
      Text("summary", "A two to three sentence summary of the most important observations")};
  return s;
}

AdapterSignature DescribeProgramSignature() {
  AdapterSignature s;
  s.instructions =
      "Below is pseudo-code of a pipeline that solves a task through calls to language models. "
      "Describe which kind of task the program seems built for and how it goes about it.";
  s.inputs = {Text("program_code", "Pseudo-code of a language-model program built for a task"),
              Text("program_example", "An example of the program at work")};
  s.outputs = {Text("program_description",
                    "What task the program is built for and how it solves that task")};
  return s;
}

AdapterSignature DescribeModuleSignature() {
  AdapterSignature s;
  s.instructions =
      "Below is pseudo-code of a pipeline that solves a task through calls to language models. "
      "Describe the purpose of the named module within this pipeline.";
  s.inputs = {Text("program_code", "Pseudo-code of a language-model program built for a task"),
              Text("program_example", "An example of the program at work"),
              Text("program_description", "What the program is for and how it works"),
              Text("module", "The module of the program to describe")};
  s.outputs = {Text("module_description", "The module's role in the whole program")};
  return s;
}

AdapterSignature GenerateSingleModuleInstructionSignature(bool data_aware, bool program_aware,
                                                          bool use_tip) {
  AdapterSignature s;
  s.instructions =
      "Learn about a task that we solve with calls to a language model from the information "
      "below, then write a new instruction that will make the language model solve the task "
      "better.";
  if (data_aware)
    s.inputs.push_back(Text("dataset_description", "A description of the dataset we use"));
  if (program_aware) {
    s.inputs.push_back(Text("program_code", "The language-model program built for the task"));
    s.inputs.push_back(Text("program_description", "What the program is for and how it works"));
    s.inputs.push_back(Text("module", "The module to write an instruction for"));
    s.inputs.push_back(Text("module_description", "What that module does"));
  }
  s.inputs.push_back(Text("task_demos", "Example inputs and outputs of the module"));
  s.inputs.push_back(Text("basic_instruction", "The current instruction"));
  if (use_tip) s.inputs.push_back(Text("tip", "A suggestion on how to write the new instruction"));
  s.outputs = {Text("proposed_instruction",
                    "An instruction that will prompt a language model to do this task well")};
  return s;
}

// MIPROv2's prompting tips, keyed as DSPy's TIPS (our wording).
const std::vector<std::pair<std::string, std::string>>& Tips() {
  static const auto* tips = new std::vector<std::pair<std::string, std::string>>{
      {"none", ""},
      {"creative", "Feel free to be inventive when writing the new instruction."},
      {"simple", "Keep the new instruction short and clear."},
      {"description", "Make the new instruction detailed and informative."},
      {"high_stakes",
       "Frame the new instruction around a high-stakes situation in which the model must get the "
       "task right."},
      {"persona", "Give the model a persona that suits the task (\"You are a ...\")."},
  };
  return *tips;
}

// repr(Example) as the dataset summarizer sees it, input keys sorted.
std::string ExampleRepr(const Example& e, const std::string& primary) {
  std::vector<std::string> keys;
  for (auto it = e.input.begin(); it != e.input.end(); ++it) keys.push_back(PyStringRepr(it.key()));
  std::sort(keys.begin(), keys.end());
  return absl::StrCat("Example(", PyRepr(FlatRecord(e, primary)), ") (input_keys={",
                      absl::StrJoin(keys, ", "), "})");
}

std::string BatchRepr(const std::vector<Example>& trainset, size_t begin, size_t end,
                      const std::string& primary) {
  std::vector<std::string> items;
  for (size_t i = begin; i < end && i < trainset.size(); ++i)
    items.push_back(ExampleRepr(trainset[i], primary));
  return absl::StrCat("[", absl::StrJoin(items, ", "), "]");
}

absl::StatusOr<std::string> One(OptimizerContext& ctx, const AdapterSignature& signature,
                                const ojson& inputs, const LmSettings& lm,
                                const std::string& rollout, const char* field) {
  ASSIGN_OR_RETURN(std::vector<ojson> outs,
                   SampleCompletions(ctx, signature, inputs, 1, lm, rollout));
  if (outs.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("adapter parse failure: the prompt model's ", field, " did not parse"));
  }
  return PyStr(outs[0].at(field));
}

// "<prefix> <value>" lines of a demo over the predictor's fields (create_example_string).
std::string ExampleString(const Predictor& p, const ojson& demo) {
  std::vector<std::string> lines;
  for (const std::string& f : p.FieldNames()) {
    auto it = demo.find(f);
    lines.push_back(absl::StrCat(p.Prefix(f), " ", it == demo.end() ? "None" : PyStr(*it)));
  }
  return absl::StrJoin(lines, "\n");
}

}  // namespace

AdapterSignature BasicGenerateInstructionSignature() {
  AdapterSignature s;
  s.instructions =
      "You improve instructions for large language models. You get the current instruction of "
      "a task defined by its input and output fields. Propose an instruction that will help a "
      "capable language model do the task well. Inventive rewrites are welcome.";
  s.inputs = {Text("basic_instruction", "The instruction before optimization")};
  s.outputs = {Text("proposed_instruction", "The improved instruction for the language model"),
               Text("proposed_prefix_for_output_field",
                    "Text placed at the end of the prompt that helps the model start its answer")};
  return s;
}

AdapterSignature GenerateInstructionGivenAttemptsSignature() {
  AdapterSignature s;
  s.instructions =
      "You improve instructions for large language models. Below are instructions that were "
      "tried, each with its validation score, ordered from the lowest to the highest score.\n\n"
      "Propose a new instruction that will make a capable language model do the task even "
      "better. Inventive rewrites are welcome.";
  s.inputs = {Text("attempted_instructions", "")};
  s.outputs = {Text("proposed_instruction", "The improved instruction for the language model"),
               Text("proposed_prefix_for_output_field",
                    "Text placed at the end of the prompt that helps the model start its answer")};
  return s;
}

absl::StatusOr<std::vector<ojson>> SampleCompletions(
    OptimizerContext& ctx, const AdapterSignature& signature, const ojson& inputs, int n,
    const LmSettings& lm, const std::string& rollout_prefix, int* failures) {
  if (failures != nullptr) *failures = 0;
  const std::string key = absl::StrCat(
      "propose/", HashHex(absl::StrCat(FormatSystemMessage(AdapterKind::kChat, signature), "\x1f",
                                       inputs.dump(), "\x1f", n, "\x1f",
                                       OptimizerContext::LmKey(lm), "\x1f", rollout_prefix)));
  if (std::optional<ojson> saved = ctx.Lookup(key); saved && saved->is_array()) {
    std::vector<ojson> out;
    for (const ojson& o : *saved) out.push_back(o);
    return out;
  }
  RETURN_IF_ERROR(ctx.CheckStop());
  const RunConfig& student = ctx.student();
  std::vector<absl::StatusOr<PredictResult>> results(static_cast<size_t>(n),
                                                     absl::UnknownError("not run"));
  std::vector<int> parse_failures(static_cast<size_t>(n), 0);
  ParallelFor(static_cast<size_t>(n), ctx.num_threads(), [&](size_t k) {
    PredictRequest request;
    request.signature = &signature;
    request.inputs = inputs;
    request.base.provider = lm.provider;
    request.base.model = lm.model;
    request.base.temperature = lm.temperature;
    request.base.max_tokens = lm.max_tokens;
    if (!rollout_prefix.empty()) request.base.rollout_id = absl::StrCat(rollout_prefix, "/", k);
    llm::CallOptions options;
    options.cancel = student.cancel;
    options.account = student.account;
    options.deadline = student.deadline;
    results[k] = CallPredict(ctx.client(), request, options, &parse_failures[k]);
  });
  std::vector<ojson> out;
  int failed = 0;
  for (size_t k = 0; k < results.size(); ++k) {
    if (!results[k].ok() && IsParseFailure(results[k].status())) ++failed;
    if (results[k].ok()) {
      out.push_back(results[k]->outputs);
      continue;
    }
    if (!IsParseFailure(results[k].status())) {
      absl::Status stop = ctx.CheckStop();
      return stop.ok() ? results[k].status() : stop;
    }
  }
  if (failures != nullptr) *failures = failed;
  ojson saved = ojson::array();
  for (const ojson& o : out) saved.push_back(o);
  ctx.Record(key, saved);
  return out;
}

absl::StatusOr<std::string> DatasetSummary(OptimizerContext& ctx,
                                           const std::vector<Example>& trainset,
                                           int view_data_batch_size, const LmSettings& lm) {
  const std::string primary = ctx.primary_output();
  LmSettings sampling = lm;
  sampling.temperature = 1.0;
  const size_t batch = static_cast<size_t>(std::max(1, view_data_batch_size));
  ojson inputs = ojson::object();
  inputs["examples"] = BatchRepr(trainset, 0, std::min(trainset.size(), batch), primary);
  ASSIGN_OR_RETURN(std::string observations,
                   One(ctx, DatasetDescriptorSignature(), inputs, sampling, "", "observations"));
  int skips = 0;
  int calls = 0;
  for (size_t b = batch; b < trainset.size(); b += batch) {
    if (++calls >= 10) break;
    ojson more = ojson::object();
    more["examples"] = BatchRepr(trainset, b, std::min(trainset.size(), b + batch), primary);
    more["prior_observations"] = observations;
    absl::StatusOr<std::string> added =
        One(ctx, DatasetDescriptorWithPriorSignature(), more, sampling, "", "observations");
    if (!added.ok()) {
      // DSPy keeps the observations gathered so far when a later batch fails.
      if (IsStopStatus(added.status())) return added.status();
      break;
    }
    if (added->size() >= 8 && absl::AsciiStrToUpper(added->substr(0, 8)) == "COMPLETE") {
      if (++skips >= 5) break;
      continue;
    }
    observations += *added;
  }
  ojson summarize = ojson::object();
  summarize["observations"] = observations;
  ASSIGN_OR_RETURN(std::string summary,
                   One(ctx, ObservationSummarizerSignature(), summarize, sampling, "", "summary"));
  return StripProposalPrefix(summary);
}

std::string ProgramCode(const pipeline::Pipeline& pipeline, const Program& program) {
  std::vector<std::string> lines;
  lines.push_back(absl::StrCat("pipeline ", pipeline.name, " (pipeline_ex workflow):"));
  for (const pipeline::Step* step_ptr : pipeline.AllSteps()) {
    const pipeline::Step& step = *step_ptr;
    const std::string& name = step.path.empty() ? step.name : step.path;
    const Predictor* p = program.Find(name);
    if (p == nullptr) {
      lines.push_back(absl::StrCat("  step ", name, " (", step.type, ")"));
      continue;
    }
    std::vector<std::string> outputs = p->OutputNames();
    lines.push_back(absl::StrCat(
        "  step ", name, " (", step.type,
        "): ", p->kind == PredictorKind::kChainOfThought ? "ChainOfThought" : "Predict", "(",
        absl::StrJoin(p->signature.InputNames(), ", "), ") -> ", absl::StrJoin(outputs, ", ")));
    for (const pipeline::PromptPart& part : step.prompt) {
      if (part.kind == pipeline::PromptPartKind::kPreviousResponse) {
        lines.push_back(absl::StrCat("    uses the response of step ", part.step));
      } else if (part.kind == pipeline::PromptPartKind::kFile) {
        lines.push_back(absl::StrCat("    includes file ", part.path));
      }
    }
  }
  return absl::StrJoin(lines, "\n");
}

absl::StatusOr<std::vector<std::vector<std::string>>> ProposeInstructions(
    OptimizerContext& ctx, const Program& program, const std::vector<Example>& trainset,
    const std::vector<std::vector<std::vector<ojson>>>& demo_candidates, int num_candidates,
    const GroundedProposerOptions& options, PyRandom& rng) {
  std::string data_summary;
  bool data_aware = options.data_aware;
  if (data_aware) {
    absl::StatusOr<std::string> summary =
        DatasetSummary(ctx, trainset, options.view_data_batch_size, options.prompt_lm);
    if (!summary.ok()) {
      if (IsStopStatus(summary.status())) return summary.status();
      data_aware = false;  // as DSPy: run without the data-aware proposer
    } else {
      data_summary = *summary;
    }
  }
  const std::string program_code = ProgramCode(ctx.runner().pipeline(), program);
  const bool have_demos = !demo_candidates.empty() && !demo_candidates[0].empty();
  const int num_sets =
      have_demos ? std::max<int>(static_cast<int>(demo_candidates[0].size()), 1) : num_candidates;
  const int per_predictor = std::min(num_candidates, num_sets);

  // The rng draws happen in DSPy's order before the (parallel) calls.
  struct Job {
    size_t predictor;
    int demo_set;
    std::string tip;
    int64_t rollout;
  };
  std::vector<Job> jobs;
  for (size_t i = 0; i < program.predictors.size(); ++i) {
    for (int j = 0; j < per_predictor; ++j) {
      Job job{i, j, "", 0};
      if (options.tip_aware) job.tip = Tips()[rng.ChoiceIndex(Tips().size())].second;
      job.rollout = rng.RandInt(0, 1'000'000'000);
      jobs.push_back(std::move(job));
    }
  }
  std::vector<absl::StatusOr<std::string>> proposals(jobs.size(), absl::UnknownError("not run"));
  OptimizerContext* c = &ctx;
  ParallelFor(jobs.size(), ctx.num_threads(), [&](size_t k) {
    const Job& job = jobs[k];
    const Predictor& pred = program.predictors[job.predictor];
    LmSettings lm = options.prompt_lm;
    lm.temperature = options.init_temperature;
    const std::string rollout = absl::StrCat("mipro/", job.rollout);
    // Task demos: up to num_demos_in_context augmented demos from set j, then the next sets.
    std::string task_demos;
    if (options.fewshot_aware && have_demos && job.predictor < demo_candidates.size()) {
      const auto& sets = demo_candidates[job.predictor];
      std::vector<std::string> strings;
      for (size_t s = 0;
           s < sets.size() && static_cast<int>(strings.size()) < options.num_demos_in_context;
           ++s) {
        const auto& set = sets[(static_cast<size_t>(job.demo_set) + s) % sets.size()];
        for (const ojson& demo : set) {
          if (!demo.contains("augmented")) continue;
          strings.push_back(ExampleString(pred, demo));
          if (static_cast<int>(strings.size()) >= options.num_demos_in_context) break;
        }
      }
      if (!strings.empty()) task_demos = absl::StrCat(absl::StrJoin(strings, "\n\n"), "\n\n");
    }
    if (PyStrip(task_demos).empty() || job.demo_set == 0) task_demos = "No task demos provided.";
    std::string program_description = "Not available";
    std::string module = "Not provided";
    std::string module_description = "Not provided";
    bool program_aware = options.program_aware;
    if (program_aware) {
      ojson in = ojson::object();
      in["program_code"] = program_code;
      in["program_example"] = task_demos;
      absl::StatusOr<std::string> described =
          One(*c, DescribeProgramSignature(), in, lm, rollout, "program_description");
      if (described.ok()) {
        program_description = StripProposalPrefix(*described);
        std::vector<std::string> outs = pred.OutputNames();
        module = absl::StrCat("Predict(", absl::StrJoin(pred.signature.InputNames(), ", "), ") -> ",
                              absl::StrJoin(outs, ", "));
        ojson min = ojson::object();
        min["program_code"] = program_code;
        min["program_example"] = task_demos;
        min["program_description"] = program_description;
        min["module"] = module;
        absl::StatusOr<std::string> mdesc =
            One(*c, DescribeModuleSignature(), min, lm, rollout, "module_description");
        if (mdesc.ok()) {
          module_description = *mdesc;
        } else {
          if (IsStopStatus(mdesc.status())) {
            proposals[k] = mdesc.status();
            return;
          }
          program_aware = false;
        }
      } else {
        if (IsStopStatus(described.status())) {
          proposals[k] = described.status();
          return;
        }
        program_aware = false;
      }
    }
    const bool use_tip = !job.tip.empty();
    AdapterSignature sig =
        GenerateSingleModuleInstructionSignature(data_aware, program_aware, use_tip);
    ojson in = ojson::object();
    if (data_aware) in["dataset_description"] = data_summary;
    if (program_aware) {
      in["program_code"] = program_code;
      in["program_description"] = program_description;
      in["module"] = module;
      in["module_description"] = module_description;
    }
    in["task_demos"] = task_demos;
    in["basic_instruction"] = pred.signature.instructions;
    if (use_tip) in["tip"] = job.tip;
    absl::StatusOr<std::string> proposed = One(*c, sig, in, lm, rollout, "proposed_instruction");
    if (proposed.ok()) {
      proposals[k] = StripProposalPrefix(StripProposalPrefix(*proposed));
    } else {
      proposals[k] = proposed.status();
    }
  });
  std::vector<std::vector<std::string>> out(program.predictors.size());
  for (size_t k = 0; k < jobs.size(); ++k) {
    if (proposals[k].ok()) {
      out[jobs[k].predictor].push_back(*proposals[k]);
      continue;
    }
    if (IsStopStatus(proposals[k].status())) return proposals[k].status();
    absl::Status stop = ctx.CheckStop();
    if (!stop.ok()) return stop;
    // A proposal that failed keeps the current instruction in its slot.
    out[jobs[k].predictor].push_back(program.predictors[jobs[k].predictor].signature.instructions);
  }
  return out;
}

}  // namespace elexirion::optimizer
