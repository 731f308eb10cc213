#include "server/api/program_convert.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace elexirion::api {

absl::StatusOr<pipeline::ProgramState> ProgramStateFromDspyJson(const std::string& dspy_json) {
  auto json = nlohmann::json::parse(dspy_json, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::DataLossError("stored program is not a JSON object");
  }
  pipeline::ProgramState state;
  for (auto it = json.begin(); it != json.end(); ++it) {
    if (it.key() == "metadata" || !it.value().is_object()) continue;
    std::string step = it.key();
    if (absl::EndsWith(step, ".predict")) step.resize(step.size() - 8);
    pipeline::StepProgram program;
    const auto& predictor = it.value();
    if (predictor.contains("signature") && predictor["signature"].is_object()) {
      const auto& instructions = predictor["signature"].value("instructions", nlohmann::json());
      if (instructions.is_string() && !instructions.get<std::string>().empty()) {
        program.instruction = instructions.get<std::string>();
      }
    }
    if (predictor.contains("demos") && predictor["demos"].is_array()) {
      for (auto demo : predictor["demos"]) {
        if (!demo.is_object()) continue;
        demo.erase("augmented");
        program.demos.push_back(std::move(demo));
      }
    }
    state.steps[step] = std::move(program);
  }
  return state;
}

}  // namespace elexirion::api
