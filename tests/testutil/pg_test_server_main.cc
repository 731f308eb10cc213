// pg_test_server: the PostgresServer test fixture as a program, for shell scripts and
// benchmarks that need a throw-away PostgreSQL server.
//
//   pg_test_server [--port=N] [--fsync] [--db=NAME]...
//
// Prints shell assignments, then READY, on stdout:
//   PG_PORT=54321
//   PG_DIR=/tmp/elx-pg-...
//   PG_DSN_<NAME>='host=127.0.0.1 port=54321 user=postgres dbname=<NAME>'   (one per --db)
//   READY
// and serves until SIGTERM, SIGINT or SIGHUP, then stops the server and removes its directory.
// Exits 1 (message on stderr) when the server cannot start.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "tests/testutil/postgres_server.h"

int main(int argc, char** argv) {
  elexirion::testutil::PostgresServer::Options options;
  std::vector<std::string> databases;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (absl::StartsWith(arg, "--db=")) {
      databases.push_back(arg.substr(5));
    } else if (absl::StartsWith(arg, "--port=") && absl::SimpleAtoi(arg.substr(7), &options.port)) {
    } else if (arg == "--fsync") {
      options.fsync = true;
    } else {
      std::cerr << "usage: pg_test_server [--port=N] [--fsync] [--db=NAME]...\n";
      return 2;
    }
  }
  // Block the stop signals before any thread or child exists, then wait for one.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  auto server = elexirion::testutil::PostgresServer::Start(options);
  if (!server.ok()) {
    std::cerr << "pg_test_server: " << server.status() << "\n";
    return 1;
  }
  std::cout << "PG_PORT=" << (*server)->port() << "\nPG_DIR=" << (*server)->dir() << "\n";
  for (const std::string& name : databases) {
    auto dsn = (*server)->CreateDatabase(name);
    if (!dsn.ok()) {
      std::cerr << "pg_test_server: " << dsn.status() << "\n";
      return 1;
    }
    std::cout << "PG_DSN_" << name << "='" << *dsn << "'\n";
  }
  std::cout << "READY" << std::endl;
  int sig = 0;
  sigwait(&stop, &sig);
  return 0;
}
