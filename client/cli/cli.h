// The `elexirion` command-line tool: a command table over the client library.
#pragma once

#include <functional>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "client/elexirion_client.h"

namespace elexirion::cli {

// Global flags and the rest of the command line.
struct Invocation {
  std::string address;
  std::string token;
  bool json = false;
  absl::Duration timeout = absl::Seconds(30);
  // --timeout was given; otherwise `run` waits as long as the server's execution limit.
  bool timeout_given = false;
  // The command's words, global flags taken out, e.g. {"jobs", "list", "--state", "running"}.
  std::vector<std::string> words;
};

// Parses global flags (--addr, --token, --json, --timeout; env ELEXIRION_ADDR and
// ELEXIRION_TOKEN as defaults), before or after the command. INVALID_ARGUMENT naming the flag.
absl::StatusOr<Invocation> ParseInvocation(const std::vector<std::string>& args);

// Runs the command; prints results to `out` and errors to `err`. Returns the exit code:
// 0 success, 1 the server returned an error (or the pipeline failed), 2 usage error.
// `help`, --help or -h anywhere print a usage to `out` (exit 0) instead, before any check.
int Run(const Invocation& invocation, std::ostream& out, std::ostream& err);

// The list of commands with their synopses, the global flags and the exit codes.
std::string Usage();

// Every command, "health" or "group verb" ("jobs list"), in the order Usage() lists them.
std::vector<std::string> CommandNames();

}  // namespace elexirion::cli
