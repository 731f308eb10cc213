// What every `elexirion` sub-command handler shares: its options, the context it runs in and
// the marker that turns an error into exit code 2 (a usage error) instead of 1 (the server's).
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "client/cli/cli.h"
#include "client/elexirion_client.h"
#include "google/protobuf/message.h"

namespace elexirion::cli {

// An error in the command line or in the files it names (exit code 2), as opposed to one
// returned by the server (exit code 1).
absl::Status UsageError(absl::string_view message);
bool IsUsageError(const absl::Status& status);

// Pretty-printed JSON of a message with proto field names (the --json output).
std::string ToJson(const google::protobuf::Message& message);

// `--name value` / `--name=value` options of a sub-command; the other words stay positional.
// Immutable after construction; thread compatible.
class CommandArgs {
 public:
  explicit CommandArgs(const std::vector<std::string>& words);

  // Options that take no value (--follow; --follow=false also works).
  static bool IsSwitch(const std::string& name);

  bool Has(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }
  std::vector<std::string> All(const std::string& name) const;
  std::string Get(const std::string& name, const std::string& fallback = "") const;
  // Usage error for an option not in `known` or without a value.
  absl::Status Check(const std::vector<std::string>& known) const;

 private:
  std::vector<std::string> positional_;
  std::vector<std::pair<std::string, std::string>> options_;
  std::string missing_value_;
};

struct Context {
  const Invocation& inv;
  client::Client& client;
  std::ostream& out;
};

using Handler = std::function<absl::Status(Context&, const CommandArgs&)>;

// One sub-command: what runs it and what `elexirion COMMAND --help` prints.
struct Command {
  // "health", "jobs list": one word or a group and a verb.
  std::string name;
  Handler handler;
  // The line after "usage: elexirion ", e.g. "jobs get JOB_ID"; longer ones continue on
  // lines indented by four spaces.
  std::string synopsis;
  // What it does, in one line (the command list of `elexirion --help`).
  std::string summary;
  // More about its options and files, for its own --help; may be empty.
  std::string details;
};

}  // namespace elexirion::cli
