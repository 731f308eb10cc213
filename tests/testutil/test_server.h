// Test harnesses that run the real server: in-process on 127.0.0.1 port 0 with a temporary
// SQLite file, or as a separate elexirion-server process.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/elexirion_client.h"
#include "server/app/server.h"
#include "server/config/server_config.h"
#include "tests/testutil/temp_dir.h"

namespace elexirion::testutil {

// Configuration for tests: loopback, port 0 for gRPC and HTTP, SQLite in `dir`.
config::ServerConfig TestConfig(const TempDir& dir);

// The real server in this process.
class InProcessServer {
 public:
  static absl::StatusOr<std::unique_ptr<InProcessServer>> Start(config::ServerConfig config);
  static absl::StatusOr<std::unique_ptr<InProcessServer>> Start(app::Server::Options options);
  ~InProcessServer();

  app::Server& server() { return *server_; }
  std::string address() const;
  int http_port() const { return server_->http_port(); }
  std::unique_ptr<client::Client> NewClient(const std::string& token = "") const;

 private:
  std::unique_ptr<app::Server> server_;
};

// elexirion-server as a child process. The binary path comes from $ELEXIRION_BINARY_DIR.
class ServerProcess {
 public:
  // Starts the binary with `args` and waits until it logs "serving" (its ports) or exits.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(
      const std::vector<std::string>& args, absl::Duration timeout = absl::Seconds(20));
  ~ServerProcess();

  pid_t pid() const { return pid_; }
  int grpc_port() const { return grpc_port_; }
  int http_port() const { return http_port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(grpc_port_); }
  // Sends `signal` and waits for exit; returns the exit status as from waitpid.
  int Signal(int signal, absl::Duration timeout = absl::Seconds(30));
  // Everything the process wrote to stderr so far.
  std::string Stderr() const;

 private:
  pid_t pid_ = -1;
  int grpc_port_ = 0;
  int http_port_ = 0;
  std::string stderr_path_;
};

// Runs a program to completion, capturing stdout+stderr. Returns the exit code (or -1).
int RunCommand(const std::vector<std::string>& argv, std::string* output,
               absl::Duration timeout = absl::Seconds(60));

std::string BinaryPath(const std::string& relative);
std::string SourcePath(const std::string& relative);
// OptimizeModule / GetJob through `client`; a failed call is a test failure (and an empty job).
v1::Job SubmitJob(const client::Client& client, const v1::OptimizeModuleRequest& request);
v1::Job GetJob(const client::Client& client, const std::string& id);

// The whole file ("" when it cannot be read).
std::string ReadFile(const std::string& path);
// A file of the bundled code-analysis example: examples/code_analysis/<relative>.
std::string CodeAnalysisExample(const std::string& relative);
// The `providers:` YAML of an `anthropic` instance at a fake provider (its key read from
// `key_file`, fast retries), for config.llm or a config file.
std::string FakeAnthropicProviders(const std::string& base_url, const std::string& key_file);

// HTTP GET on 127.0.0.1:port (plain sockets). Returns status code and body.
absl::StatusOr<std::pair<int, std::string>> HttpGet(int port, const std::string& path,
                                                    const std::string& method = "GET");

}  // namespace elexirion::testutil
