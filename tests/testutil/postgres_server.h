// A real, throw-away PostgreSQL server for tests and benchmarks: initdb in a fresh temporary
// directory, `postgres` on a free 127.0.0.1 port (its unix socket in that directory), one
// database per test via CreateDatabase(). No mocks: tests of the PostgreSQL store talk to this.
//
// The binaries come from `pg_config --bindir`, else /usr/lib/postgresql/<newest>/bin. PostgreSQL
// refuses to run as root, so when this process is root initdb and postgres run as user
// `nobody` (the directory is chowned to it). Settings favour speed over durability
// (fsync=off unless Options::fsync): a crash of the machine may lose the test data, nothing
// else.
//
// The server gets SIGINT (fast shutdown) when the object is destroyed, and also when the
// thread that started it dies (PR_SET_PDEATHSIG), so a killed test leaves no postgres behind:
// create it on the test's main thread.
//
// Thread safety: not thread safe; Dsn() and port() may be read from any thread.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace elexirion::testutil {

class PostgresServer {
 public:
  struct Options {
    // 0 = a free port picked at start.
    int port = 0;
    // fsync and full_page_writes (off: tests and benchmarks do not need crash safety).
    bool fsync = false;
    // max_connections of the server (several stores with connection pools per test).
    int max_connections = 200;
    // How long Start()/Restart() wait for the server to accept connections.
    absl::Duration start_timeout = absl::Seconds(60);
  };

  // initdb + start. FAILED_PRECONDITION when the PostgreSQL binaries are missing; UNAVAILABLE
  // (with the tail of the server log) when it does not come up.
  static absl::StatusOr<std::unique_ptr<PostgresServer>> Start(Options options);
  static absl::StatusOr<std::unique_ptr<PostgresServer>> Start() { return Start(Options()); }
  // Stops the server and removes its directory.
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // Fast shutdown (clients are disconnected); the data directory is kept for Restart().
  absl::Status Stop();
  // Starts the stopped server again on the same port and data directory.
  absl::Status Restart();
  bool running() const { return pid_ > 0; }
  // The postmaster's pid (-1 when stopped); its children are the backends.
  pid_t pid() const { return pid_; }

  int port() const { return port_; }
  // "host=127.0.0.1 port=<port> user=postgres dbname=<dbname>" (trust authentication).
  std::string Dsn(const std::string& dbname) const;
  // Creates database `name` (letters, digits, '_'; ALREADY_EXISTS when taken) and returns its
  // DSN.
  absl::StatusOr<std::string> CreateDatabase(const std::string& name);
  // A fresh database with a generated name ("t<counter>_<random>").
  absl::StatusOr<std::string> CreateDatabase();
  // Runs one SQL command as the superuser on `dbname` (test set-up, e.g. terminating sessions).
  absl::Status Exec(const std::string& dbname, const std::string& sql);

  // The temporary directory (data/ and postgres.log live below it).
  const std::string& dir() const { return dir_; }
  // Everything the server logged so far.
  std::string Log() const;

 private:
  PostgresServer() = default;
  absl::Status Init();
  // Starts postgres on port_ and waits until it answers.
  absl::Status Launch();

  Options options_;
  std::string bindir_;
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
  // Run initdb/postgres as this uid/gid (-1: as ourselves).
  int run_uid_ = -1;
  int run_gid_ = -1;
  int next_db_ = 0;
};

}  // namespace elexirion::testutil
