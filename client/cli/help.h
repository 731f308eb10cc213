// What `elexirion --help`, `elexirion GROUP --help` and `elexirion COMMAND --help` print, and
// the "did you mean" of an unknown command. Pure text over the command table.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "client/cli/command.h"

namespace elexirion::cli {

// The global flags, every command's synopsis and summary, and the environment.
std::string TopUsage(const std::vector<Command>& commands);

// "usage: elexirion SYNOPSIS", the summary, the details and the global flags.
std::string CommandUsage(const Command& command);

// The commands of a group ("jobs"), one synopsis and summary each; "" when no command
// belongs to it.
std::string GroupUsage(const std::vector<Command>& commands, absl::string_view group);

// The command name closest to what was typed ("job list" -> "jobs list"), when it is close
// enough to be a typo.
std::optional<std::string> Suggest(const std::vector<Command>& commands, absl::string_view typed);

}  // namespace elexirion::cli
