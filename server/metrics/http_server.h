// The HTTP endpoint for operators: GET /metrics (Prometheus text format from the default
// registry), /healthz (liveness: the process answers) and /readyz (readiness: the supplied
// check passes and the server is not draining). Other methods get 405, other paths 404.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

class CivetServer;

namespace elexirion::metrics {

class HttpServer {
 public:
  struct Options {
    // host:port; port 0 picks a free port.
    std::string listen = "0.0.0.0:9090";
    // civetweb worker threads.
    int threads = 2;
    // Readiness check: OK when the server can take traffic, an error saying why otherwise.
    std::function<absl::Status()> readiness = [] { return absl::OkStatus(); };
  };

  // Binds and starts serving. UNAVAILABLE when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Create(Options options);
  ~HttpServer();

  int port() const { return port_; }

 private:
  class Handler;
  explicit HttpServer(Options options);

  Options options_;
  std::unique_ptr<CivetServer> server_;
  std::unique_ptr<Handler> metrics_, healthz_, readyz_;
  int port_ = 0;
};

}  // namespace elexirion::metrics
