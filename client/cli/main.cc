// elexirion: command-line client for the elexirion server.
#include <iostream>
#include <string>
#include <vector>

#include "client/cli/cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto invocation = elexirion::cli::ParseInvocation(args);
  if (!invocation.ok()) {
    std::cerr << "elexirion: " << invocation.status().message()
              << "\n`elexirion --help` shows the usage.\n";
    return 2;
  }
  return elexirion::cli::Run(*invocation, std::cout, std::cerr);
}
