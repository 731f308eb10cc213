// `elexirion datasets ...`: datasets of training examples (DatasetService), including import
// and export in JSON Lines and in the design document's directory of `{id}.json` files.
#pragma once

#include <vector>

#include "client/cli/command.h"

namespace elexirion::cli {

// Adds "datasets create", "datasets list", "datasets delete", "datasets examples",
// "datasets add", "datasets delete-example", "datasets import" and "datasets export".
void AddDatasetCommands(std::vector<Command>* commands);

}  // namespace elexirion::cli
