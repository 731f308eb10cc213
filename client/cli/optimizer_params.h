// Turns `--optimizer NAME --param key=value...` into the JSON of an OptimizerSpec.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace elexirion::cli {

// Builds {"<optimizer>": {params}} for JsonStringToMessage. A value is JSON when it parses as
// JSON (numbers, true/false, objects), else a string. Enum parameters accept the short,
// case-insensitive name users type (`auto=light`, `component_selector=round_robin`) as well
// as the proto name (`AUTO_LIGHT`): the proto's own enum names are unwieldy on a command line.
// INVALID_ARGUMENT for a parameter that is not key=value.
absl::StatusOr<nlohmann::json> OptimizerSpecJson(const std::string& optimizer,
                                                 const std::vector<std::string>& params);

}  // namespace elexirion::cli
