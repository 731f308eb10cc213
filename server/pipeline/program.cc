#include "server/pipeline/program.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/pipeline/elixir_format.h"
#include "server/pipeline/strings.h"
#include "server/pipeline/templates.h"

namespace elexirion::pipeline {
namespace {

using json = nlohmann::json;

std::string StaticText(const PromptPart& part) {
  auto text = ElixirToString(part.content);
  return text.ok() ? *text : std::string();
}

// Static parts that hold instruction text (not only {{template}} input slots).
bool IsInstructionPart(const PromptPart& part) {
  if (part.kind != PromptPartKind::kStatic) return false;
  return !(part.content.is_string() && IsTemplateOnly(part.content.get<std::string>()));
}

bool HasSignatureField(const Signature& signature, const json& demo) {
  for (const std::string& name : signature.FieldNames()) {
    auto it = demo.find(name);
    if (it != demo.end() && !it->is_null()) return true;
  }
  return false;
}

}  // namespace

std::string StaticInstruction(const Step& step) {
  std::vector<std::string> texts;
  for (const PromptPart& part : step.prompt) {
    if (IsInstructionPart(part)) texts.push_back(StaticText(part));
  }
  return absl::StrJoin(texts, "\n");
}

std::vector<OptimizableStep> ListOptimizableSteps(const Pipeline& pipeline) {
  std::vector<OptimizableStep> out;
  for (const Step* s : pipeline.AllSteps()) {
    const Step& step = *s;
    if (!step.IsOptimizable()) continue;
    OptimizableStep o;
    o.name = step.path.empty() ? step.name : step.path;
    o.type = step.type;
    o.signature_text = step.signature_text;
    o.signature = step.signature;
    o.instruction = StaticInstruction(step);
    for (const PromptPart& part : step.prompt) {
      if (IsInstructionPart(part)) ++o.static_part_count;
    }
    out.push_back(std::move(o));
  }
  return out;
}

absl::Status ValidateProgram(const Pipeline& pipeline, const ProgramState& program) {
  for (const auto& [name, step_program] : program.steps) {
    const Step* step = pipeline.FindStep(name);
    if (step == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("program: step \"", name, "\" is not in pipeline \"", pipeline.name, "\""));
    }
    if (!step->IsOptimizable()) {
      return absl::InvalidArgumentError(absl::StrCat("program: step \"", name, "\" (", step->type,
                                                     ") has no optimizable prompt"));
    }
    for (size_t i = 0; i < step_program.demos.size(); ++i) {
      const json& demo = step_program.demos[i];
      if (!demo.is_object()) {
        return absl::InvalidArgumentError(
            absl::StrCat("program: step \"", name, "\": demo ", i + 1, " is not an object"));
      }
      if (!HasSignatureField(step->signature, demo)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "program: step \"", name, "\": demo ", i + 1, " has none of the signature fields ",
            absl::StrJoin(step->signature.FieldNames(), ", ")));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RenderProgramContent(const Step& step, const StepProgram& program) {
  std::string text =
      program.instruction.has_value() ? *program.instruction : StaticInstruction(step);
  if (program.demos.empty()) return text;
  std::vector<std::string> blocks;
  for (size_t i = 0; i < program.demos.size(); ++i) {
    const json& demo = program.demos[i];
    if (!demo.is_object() || !HasSignatureField(step.signature, demo)) {
      return absl::InvalidArgumentError(absl::StrCat("program: step \"", step.name, "\": demo ",
                                                     i + 1, " has no signature field"));
    }
    std::vector<std::string> fields;
    for (const std::string& name : step.signature.FieldNames()) {
      auto it = demo.find(name);
      if (it == demo.end() || it->is_null()) continue;
      const std::string value =
          it->is_string() ? it->get<std::string>() : JasonEncode(*it, /*pretty=*/true);
      fields.push_back(absl::StrCat("[[ ## ", name, " ## ]]\n", value));
    }
    blocks.push_back(absl::StrCat("Example ", i + 1, ":\n", absl::StrJoin(fields, "\n\n")));
  }
  if (!text.empty()) text += "\n\n";
  absl::StrAppend(&text, absl::StrJoin(blocks, "\n\n"), "\n");
  return text;
}

absl::StatusOr<std::vector<PromptPart>> ApplyProgram(const Step& step, const StepProgram& program) {
  if (program.empty()) return step.prompt;
  auto content = RenderProgramContent(step, program);
  if (!content.ok()) return content.status();
  PromptPart merged;
  merged.kind = PromptPartKind::kStatic;
  merged.content = *content;
  merged.source = nlohmann::ordered_json::object();
  merged.source["type"] = "static";
  merged.source["content"] = *content;
  std::vector<PromptPart> out;
  bool placed = false;
  for (const PromptPart& part : step.prompt) {
    if (IsInstructionPart(part)) {
      if (!placed) {
        merged.location = part.location;
        out.push_back(merged);
        placed = true;
      }
      continue;
    }
    out.push_back(part);
  }
  if (!placed) out.insert(out.begin(), std::move(merged));
  return out;
}

json ProgramStateToJson(const ProgramState& program) {
  json steps = json::object();
  for (const auto& [name, p] : program.steps) {
    json entry = json::object();
    if (p.instruction.has_value()) entry["instruction"] = *p.instruction;
    entry["demos"] = json::array();
    for (const json& demo : p.demos) entry["demos"].push_back(demo);
    steps[name] = std::move(entry);
  }
  return json{{"steps", std::move(steps)}};
}

absl::StatusOr<ProgramState> ProgramStateFromJson(const json& value) {
  if (!value.is_object() || !value.contains("steps") || !value["steps"].is_object()) {
    return absl::InvalidArgumentError("program: expected {\"steps\": {<step>: {...}}}");
  }
  ProgramState program;
  for (auto it = value["steps"].begin(); it != value["steps"].end(); ++it) {
    const json& entry = it.value();
    if (!entry.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat("program: step \"", it.key(), "\" must be an object"));
    }
    StepProgram p;
    if (auto i = entry.find("instruction"); i != entry.end() && !i->is_null()) {
      if (!i->is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat("program: step \"", it.key(), "\": instruction must be a string"));
      }
      p.instruction = i->get<std::string>();
    }
    if (auto d = entry.find("demos"); d != entry.end() && !d->is_null()) {
      if (!d->is_array()) {
        return absl::InvalidArgumentError(
            absl::StrCat("program: step \"", it.key(), "\": demos must be a list"));
      }
      for (const json& demo : *d) p.demos.push_back(demo);
    }
    program.steps[it.key()] = std::move(p);
  }
  return program;
}

}  // namespace elexirion::pipeline
