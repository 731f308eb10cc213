#include "server/pipeline/pipeline.h"

#include "server/pipeline/strings.h"

namespace elexirion::pipeline {

bool Step::IsOptimizable() const {
  switch (kind) {
    case StepKind::kClaude:
    case StepKind::kGemini:
    case StepKind::kClaudeSmart:
    case StepKind::kClaudeExtract:
    case StepKind::kClaudeRobust:
    case StepKind::kClaudeSession:
    case StepKind::kGeminiInstructor:
      return true;
    default:
      return false;
  }
}

namespace {

void CollectSteps(const std::vector<Step>& steps, std::vector<const Step*>* out) {
  for (const Step& step : steps) {
    out->push_back(&step);
    CollectSteps(step.sub_steps, out);
    if (step.child != nullptr) CollectSteps(step.child->steps, out);
  }
}

}  // namespace

const Step* Pipeline::FindStep(std::string_view name) const {
  for (const Step& step : steps) {
    if (step.name == name) return &step;
  }
  if (name.find('/') == std::string_view::npos) return nullptr;
  for (const Step* step : AllSteps()) {
    if (step->path == name) return step;
  }
  return nullptr;
}

std::vector<const Step*> Pipeline::AllSteps() const {
  std::vector<const Step*> out;
  CollectSteps(steps, &out);
  return out;
}

const char* StepKindName(StepKind kind) {
  switch (kind) {
    case StepKind::kClaude:
      return "claude";
    case StepKind::kGemini:
      return "gemini";
    case StepKind::kClaudeSmart:
      return "claude_smart";
    case StepKind::kClaudeExtract:
      return "claude_extract";
    case StepKind::kClaudeRobust:
      return "claude_robust";
    case StepKind::kClaudeSession:
      return "claude_session";
    case StepKind::kClaudeBatch:
      return "claude_batch";
    case StepKind::kParallelClaude:
      return "parallel_claude";
    case StepKind::kSetVariable:
      return "set_variable";
    case StepKind::kGeminiInstructor:
      return "gemini_instructor";
    case StepKind::kForLoop:
      return "for_loop";
    case StepKind::kWhileLoop:
      return "while_loop";
    case StepKind::kNestedPipeline:
      return "pipeline";
    case StepKind::kDataTransform:
      return "data_transform";
    case StepKind::kFileOps:
      return "file_ops";
  }
  return "unknown";
}

std::string EffectivePreset(const Pipeline& pipeline, const Step& step) {
  if (!step.preset.empty()) return step.preset;
  if (!pipeline.default_preset.empty()) return pipeline.default_preset;
  switch (step.kind) {
    case StepKind::kClaudeSmart: {
      auto aware = step.config.find("environment_aware");
      if (aware != step.config.end() && *aware == true &&
          (pipeline.environment_mode == "production" || pipeline.environment_mode == "test")) {
        return pipeline.environment_mode;
      }
      return "development";
    }
    case StepKind::kClaudeExtract:
    case StepKind::kClaudeSession:
      return "analysis";
    case StepKind::kClaudeRobust:
      return "production";
    default:
      return "development";
  }
}

}  // namespace elexirion::pipeline
