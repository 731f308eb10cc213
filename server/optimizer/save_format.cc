#include "server/optimizer/save_format.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "server/optimizer/py_format.h"
#include "server/optimizer/text_util.h"

namespace elexirion::optimizer {
namespace {

using ojson = nlohmann::ordered_json;

std::string Description(const Predictor& p, const std::string& field) {
  for (const auto& f : p.signature.inputs) {
    if (f.name == field && !f.description.empty()) return f.description;
  }
  for (const auto& f : p.signature.outputs) {
    if (f.name == field && !f.description.empty()) return f.description;
  }
  return absl::StrCat("${", field, "}");
}

std::string PyIdentifier(const std::string& key) {
  // "step.predict" -> "step" (the ChainOfThought attribute).
  const size_t dot = key.find('.');
  return dot == std::string::npos ? key : key.substr(0, dot);
}

}  // namespace

ojson ToDspyState(const Program& program, const std::string& pipeline_name,
                  const ojson& extra_metadata) {
  ojson state = ojson::object();
  ojson mapping = ojson::object();
  for (const Predictor& p : program.predictors) {
    ojson fields = ojson::array();
    for (const std::string& f : p.FieldNames()) {
      fields.push_back(ojson{{"prefix", p.Prefix(f)}, {"description", Description(p, f)}});
    }
    ojson demos = ojson::array();
    for (const ojson& d : p.demos) demos.push_back(d);
    ojson entry = ojson::object();
    entry["traces"] = ojson::array();
    entry["train"] = ojson::array();
    entry["demos"] = demos;
    entry["signature"] = ojson{{"instructions", p.signature.instructions}, {"fields", fields}};
    entry["lm"] = nullptr;
    state[p.SaveKey()] = entry;
    mapping[p.SaveKey()] = ojson{{"step", p.name},
                                 {"step_type", p.step_type},
                                 {"predictor", PredictorKindName(p.kind)},
                                 {"signature", p.signature.ToString()}};
  }
  ojson elexirion = ojson{{"pipeline", pipeline_name}, {"predictors", mapping}};
  for (auto it = extra_metadata.begin(); it != extra_metadata.end(); ++it) {
    elexirion[it.key()] = it.value();
  }
  state["metadata"] = ojson{
      {"dependency_versions", {{"python", "3.13"}, {"dspy", kDspyVersion}, {"cloudpickle", "3.1"}}},
      {"elexirion", elexirion}};
  return state;
}

std::string ToDspyJson(const Program& program, const std::string& pipeline_name,
                       const ojson& extra_metadata) {
  return PyJsonDumps(ToDspyState(program, pipeline_name, extra_metadata), 2) + "\n";
}

absl::StatusOr<Program> ApplyDspyJson(const Program& base, const std::string& json) {
  ojson state = ojson::parse(json, nullptr, /*allow_exceptions=*/false);
  if (state.is_discarded() || !state.is_object()) {
    return absl::InvalidArgumentError("program: not a JSON object");
  }
  Program out = base;
  for (Predictor& p : out.predictors) {
    const std::string key = p.SaveKey();
    auto it = state.find(key);
    if (it == state.end() || !it->is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat("program: no state for predictor \"", key, "\""));
    }
    const ojson& entry = *it;
    auto sig = entry.find("signature");
    if (sig == entry.end() || !sig->is_object() || !sig->contains("instructions") ||
        !sig->at("instructions").is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat("program: ", key, ".signature.instructions missing"));
    }
    p.signature.instructions = sig->at("instructions").get<std::string>();
    const std::vector<std::string> names = p.FieldNames();
    if (auto fields = sig->find("fields"); fields != sig->end()) {
      if (!fields->is_array() || fields->size() != names.size()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "program: ", key, ".signature.fields: expected ", names.size(), " fields"));
      }
      p.prefix_overrides.clear();
      for (size_t i = 0; i < names.size(); ++i) {
        const ojson& f = (*fields)[i];
        if (!f.is_object()) continue;
        const std::string prefix = f.value("prefix", InferPrefix(names[i]));
        if (prefix != InferPrefix(names[i])) p.prefix_overrides[names[i]] = prefix;
      }
    }
    p.demos.clear();
    if (auto demos = entry.find("demos"); demos != entry.end()) {
      if (!demos->is_array()) {
        return absl::InvalidArgumentError(absl::StrCat("program: ", key, ".demos must be a list"));
      }
      for (const ojson& d : *demos) {
        if (!d.is_object()) {
          return absl::InvalidArgumentError(
              absl::StrCat("program: ", key, ".demos: a demo is not an object"));
        }
        p.demos.push_back(d);
      }
    }
  }
  return out;
}

std::string DspyModuleSource(const Program& program, const std::string& class_name) {
  std::vector<std::string> lines;
  lines.push_back("import dspy");
  lines.push_back("");
  lines.push_back("");
  lines.push_back(absl::StrCat("class ", class_name, "(dspy.Module):"));
  lines.push_back("    def __init__(self):");
  lines.push_back("        super().__init__()");
  for (const Predictor& p : program.predictors) {
    const std::string attr = PyIdentifier(p.SaveKey());
    const std::string module =
        p.kind == PredictorKind::kChainOfThought ? "dspy.ChainOfThought" : "dspy.Predict";
    lines.push_back(absl::StrCat("        self.", attr, " = ", module, "(",
                                 PyStringRepr(p.signature.ToString()), ")"));
  }
  lines.push_back("");
  lines.push_back("    def forward(self, **inputs):");
  lines.push_back("        outputs = {}");
  for (const Predictor& p : program.predictors) {
    const std::string attr = PyIdentifier(p.SaveKey());
    std::vector<std::string> args;
    for (const std::string& in : p.signature.InputNames()) {
      args.push_back(absl::StrCat(in, "={**inputs, **outputs}.get(", PyStringRepr(in), ")"));
    }
    lines.push_back(absl::StrCat("        outputs.update(self.", attr, "(",
                                 absl::StrJoin(args, ", "), ").toDict())"));
  }
  lines.push_back("        return dspy.Prediction(**outputs)");
  return absl::StrJoin(lines, "\n") + "\n";
}

}  // namespace elexirion::optimizer
