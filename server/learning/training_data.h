// Training data in the design document's TrainingDataManager layout:
//   {id (8 characters), input, expected_output, metadata, created_at}
// and the harvest rule that turns good executions into examples
// (create_from_successful_execution: quality >= 8.0, source "successful_execution", the
// pipeline config in the metadata).
#pragma once

#include <cstdint>
#include <string>

#include "nlohmann/json.hpp"
#include "server/store/records.h"

namespace elexirion::learning {

// Identity of an example's content for duplicate detection: SHA-256 (hex) of the canonical
// JSON of {input, expected_output}. Metadata and ids do not count. Every writer of examples
// (AddExamples, import, harvest) uses this, so a duplicate is caught whichever way it came.
std::string ExampleContentHash(const nlohmann::json& input, const nlohmann::json& expected_output);
// The same from canonical text (what dump() writes for input and expected_output).
std::string ExampleContentHashOfText(const std::string& input_json,
                                     const std::string& expected_output_json);

// The design's threshold rule (a failed execution is never harvested).
inline bool ShouldHarvest(bool success, double quality_score, double threshold) {
  return success && quality_score >= threshold;
}

// What the example records about where it came from.
struct HarvestSource {
  std::string pipeline_name;
  int64_t program_version = 0;
  // The execution's server id and the runtime's metadata for it.
  std::string execution_id;
  nlohmann::json execution_metadata = nlohmann::json::object();
  double quality_score = 0;
  // {name, revision, program_version, yaml} of the registered pipeline when known.
  nlohmann::json pipeline_config = nlohmann::json::object();
};

// The example harvested from an execution: input -> input, output -> expected_output.
store::ExampleRecord HarvestedExample(const std::string& dataset, const nlohmann::json& input,
                                      const nlohmann::json& output, const HarvestSource& source);
// The same from canonical text of input and output (the telemetry path has it already).
store::ExampleRecord HarvestedExample(const std::string& dataset, const std::string& input_json,
                                      const std::string& output_json, const HarvestSource& source);

}  // namespace elexirion::learning
