#include "client/cli/help.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace elexirion::cli {
namespace {

constexpr char kGlobalFlags[] =
    "global flags (before or after the command):\n"
    "  --addr HOST:PORT   server address (default $ELEXIRION_ADDR or 127.0.0.1:50051)\n"
    "  --token TOKEN      bearer token (default $ELEXIRION_TOKEN)\n"
    "  --json             print results as JSON\n"
    "  --timeout 30s      deadline of each call (default 30s; `run`: 10m)\n";

constexpr char kExitCodes[] =
    "exit codes: 0 ok, 1 the server or the pipeline failed, 2 usage "
    "error (command line or files)\n";

// Continuation lines of a synopsis indented two more, under the entry they belong to.
std::string Indented(const std::string& synopsis) {
  std::string out;
  for (char c : synopsis) {
    out.push_back(c);
    if (c == '\n') out.append("  ");
  }
  return out;
}

// Synopsis and summary as one entry of a command list: the summary beside a short synopsis,
// below a long one.
std::string ListEntry(const Command& command) {
  constexpr size_t kSummaryColumn = 37;
  std::string entry = absl::StrCat("  ", Indented(command.synopsis));
  const size_t line_start = entry.rfind('\n') + 1;  // npos + 1 == 0: a single line
  const size_t width = entry.size() - line_start;
  if (width + 2 <= kSummaryColumn) {
    entry.append(kSummaryColumn - width, ' ');
  } else {
    absl::StrAppend(&entry, "\n", std::string(kSummaryColumn, ' '));
  }
  absl::StrAppend(&entry, command.summary, "\n");
  return entry;
}

size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string TopUsage(const std::vector<Command>& commands) {
  std::string out =
      "usage: elexirion [--addr HOST:PORT] [--token TOKEN] [--json] [--timeout 30s] COMMAND\n"
      "\ncommands:\n";
  for (const Command& command : commands) absl::StrAppend(&out, ListEntry(command));
  absl::StrAppend(&out, "\n", kGlobalFlags, kExitCodes,
                  "`elexirion COMMAND --help` shows one command's usage.\n");
  return out;
}

std::string CommandUsage(const Command& command) {
  std::string out =
      absl::StrCat("usage: elexirion ", Indented(command.synopsis), "\n\n", command.summary, "\n");
  if (!command.details.empty()) absl::StrAppend(&out, "\n", command.details, "\n");
  absl::StrAppend(&out, "\n", kGlobalFlags);
  return out;
}

std::string GroupUsage(const std::vector<Command>& commands, absl::string_view group) {
  std::string list;
  for (const Command& command : commands) {
    if (absl::StartsWith(command.name, absl::StrCat(group, " "))) {
      absl::StrAppend(&list, ListEntry(command));
    }
  }
  if (list.empty()) return "";
  return absl::StrCat("usage: elexirion ", group, " COMMAND\n\ncommands:\n", list, "\n",
                      "`elexirion ", group, " COMMAND --help` shows one command's usage.\n");
}

std::optional<std::string> Suggest(const std::vector<Command>& commands, absl::string_view typed) {
  std::optional<std::string> best;
  size_t best_distance = 3;  // at most two edits: a typo, not another command
  for (const Command& command : commands) {
    const size_t distance = EditDistance(typed, command.name);
    if (distance < best_distance) {
      best_distance = distance;
      best = command.name;
    }
  }
  return best;
}

}  // namespace elexirion::cli
