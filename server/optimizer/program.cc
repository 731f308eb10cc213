#include "server/optimizer/program.h"

#include <cctype>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/optimizer/text_util.h"

namespace elexirion::optimizer {
namespace {

bool IsIdentifier(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (unsigned char c : s) {
    if (!std::isalnum(c) && c != '_') return false;
  }
  return true;
}

std::string Sanitize(const std::string& s) {
  std::string out;
  for (unsigned char c : s) out.push_back(std::isalnum(c) ? static_cast<char>(c) : '_');
  if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0]))) out.insert(0, "step_");
  return out;
}

}  // namespace

const char* PredictorKindName(PredictorKind kind) {
  return kind == PredictorKind::kPredict ? "predict" : "chain_of_thought";
}

absl::StatusOr<PredictorKind> ParsePredictorKind(const std::string& text) {
  if (text == "predict" || text == "Predict") return PredictorKind::kPredict;
  if (text == "chain_of_thought" || text == "ChainOfThought" || text == "cot") {
    return PredictorKind::kChainOfThought;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("predictor \"", text, "\": expected predict or chain_of_thought"));
}

std::string Predictor::SaveKey() const {
  const std::string base = IsIdentifier(name) ? name : Sanitize(name);
  return kind == PredictorKind::kChainOfThought ? absl::StrCat(base, ".predict") : base;
}

absl::StatusOr<AdapterSignature> Predictor::ToAdapterSignature() const {
  AdapterSignature out;
  out.instructions = signature.instructions;
  for (const pipeline::SignatureField& f : signature.inputs) {
    auto type = ParseFieldType(f.type);
    if (!type.ok()) return type.status();
    out.inputs.push_back({f.name, *type, f.description});
  }
  if (kind == PredictorKind::kChainOfThought) {
    out.outputs.push_back({"reasoning", FieldType{}, ""});
  }
  for (const pipeline::SignatureField& f : signature.outputs) {
    auto type = ParseFieldType(f.type);
    if (!type.ok()) return type.status();
    out.outputs.push_back({f.name, *type, f.description});
  }
  return out;
}

std::vector<std::string> Predictor::OutputNames() const {
  std::vector<std::string> names;
  if (kind == PredictorKind::kChainOfThought) names.push_back("reasoning");
  for (const pipeline::SignatureField& f : signature.outputs) names.push_back(f.name);
  return names;
}

std::vector<std::string> Predictor::FieldNames() const {
  std::vector<std::string> names = signature.InputNames();
  for (std::string& n : OutputNames()) names.push_back(std::move(n));
  return names;
}

std::string Predictor::Prefix(const std::string& field) const {
  auto it = prefix_overrides.find(field);
  if (it != prefix_overrides.end()) return it->second;
  return InferPrefix(field);
}

const Predictor* Program::Find(const std::string& name) const {
  for (const Predictor& p : predictors) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

Predictor* Program::Find(const std::string& name) {
  for (Predictor& p : predictors) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

std::string Program::PrimaryOutputField() const {
  if (predictors.empty() || predictors.back().signature.outputs.empty()) return "";
  return predictors.back().signature.outputs.back().name;
}

ojson Program::StateJson() const {
  ojson out = ojson::object();
  for (const Predictor& p : predictors) {
    ojson prefixes = ojson::object();
    for (const auto& [field, prefix] : p.prefix_overrides) prefixes[field] = prefix;
    ojson demos = ojson::array();
    for (const ojson& d : p.demos) demos.push_back(d);
    out[p.name] = ojson{{"kind", PredictorKindName(p.kind)},
                        {"instructions", p.signature.instructions},
                        {"prefixes", prefixes},
                        {"demos", demos}};
  }
  return out;
}

Program Program::ResetCopy() const {
  Program copy = *this;
  for (Predictor& p : copy.predictors) p.demos.clear();
  return copy;
}

std::string StepForSaveKey(const pipeline::Pipeline& pipeline, const std::string& key) {
  if (pipeline.FindStep(key) != nullptr) return key;
  for (const pipeline::Step* step : pipeline.AllSteps()) {
    if (step->IsOptimizable() && !IsIdentifier(step->path) && Sanitize(step->path) == key) {
      return step->path;
    }
  }
  return key;
}

absl::StatusOr<Program> BuildProgram(const pipeline::Pipeline& pipeline,
                                     const ProgramOptions& options) {
  std::set<std::string> wanted(options.steps.begin(), options.steps.end());
  for (const std::string& name : options.steps) {
    const pipeline::Step* step = pipeline.FindStep(name);
    if (step == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("steps: \"", name, "\" is not a step of pipeline \"", pipeline.name, "\""));
    }
    if (!step->IsOptimizable()) {
      return absl::InvalidArgumentError(
          absl::StrCat("steps: \"", name, "\" (", step->type, ") has no optimizable prompt"));
    }
  }
  for (const auto& [name, kind] : options.kinds) {
    if (pipeline.FindStep(name) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("predictor kinds: unknown step \"", name, "\""));
    }
  }
  Program program;
  // Steps inside loops and nested pipelines are predictors too, named by their path.
  for (const pipeline::Step* step_ptr : pipeline.AllSteps()) {
    const pipeline::Step& step = *step_ptr;
    if (!step.IsOptimizable()) continue;
    const std::string& name = step.path.empty() ? step.name : step.path;
    if (!wanted.empty() && wanted.count(name) == 0) continue;
    Predictor p;
    p.name = name;
    p.step_type = step.type;
    p.signature = step.signature;
    const std::string static_text = pipeline::StaticInstruction(step);
    p.signature.instructions =
        static_text.empty() ? pipeline::DefaultInstructions(step.signature) : static_text;
    p.base_instruction = p.signature.instructions;
    auto kind_it = options.kinds.find(name);
    if (kind_it != options.kinds.end()) {
      p.kind = kind_it->second;
    } else if (auto it = step.config.find("predictor"); it != step.config.end()) {
      if (!it->is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat("step \"", name, "\": predictor must be a string"));
      }
      auto kind = ParsePredictorKind(it->get<std::string>());
      if (!kind.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("step \"", name, "\": ", kind.status().message()));
      }
      p.kind = *kind;
    }
    std::map<std::string, std::string> descriptions;
    if (auto it = step.config.find("signature_descriptions");
        it != step.config.end() && it->is_object()) {
      for (auto d = it->begin(); d != it->end(); ++d) {
        if (d->is_string()) descriptions[d.key()] = d->get<std::string>();
      }
    }
    if (auto it = options.descriptions.find(name); it != options.descriptions.end()) {
      for (const auto& [field, text] : it->second) descriptions[field] = text;
    }
    for (auto& f : p.signature.inputs) {
      if (auto d = descriptions.find(f.name); d != descriptions.end()) f.description = d->second;
    }
    for (auto& f : p.signature.outputs) {
      if (auto d = descriptions.find(f.name); d != descriptions.end()) f.description = d->second;
    }
    auto sig = p.ToAdapterSignature();
    if (!sig.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("step \"", name, "\": signature: ", sig.status().message()));
    }
    program.predictors.push_back(std::move(p));
  }
  if (program.predictors.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("pipeline \"", pipeline.name, "\" has no optimizable step"));
  }
  return program;
}

pipeline::ProgramState ToProgramState(const Program& program) {
  pipeline::ProgramState state;
  for (const Predictor& p : program.predictors) {
    pipeline::StepProgram sp;
    if (p.signature.instructions != p.base_instruction) sp.instruction = p.signature.instructions;
    const std::vector<std::string> fields = p.signature.FieldNames();
    for (const ojson& demo : p.demos) {
      // Only demos carrying at least one signature field can be rendered by the engine.
      bool usable = false;
      for (const std::string& f : fields) {
        if (demo.contains(f) && !demo.at(f).is_null()) usable = true;
      }
      if (usable) sp.demos.push_back(nlohmann::json::parse(demo.dump()));
    }
    if (!sp.empty()) state.steps[p.name] = std::move(sp);
  }
  return state;
}

}  // namespace elexirion::optimizer
