// `elexirion usage PIPELINE [--window 24h]`: a pipeline's usage statistics
// (TelemetryService.GetUsageStats).
#pragma once

#include "absl/status/status.h"
#include "client/cli/command.h"

namespace elexirion::cli {

absl::Status UsageStatsCommand(Context& c, const CommandArgs& args);

}  // namespace elexirion::cli
