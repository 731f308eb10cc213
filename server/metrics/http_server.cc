#include "server/metrics/http_server.h"

#include <exception>
#include <string>
#include <vector>

#include "CivetServer.h"
#include "absl/strings/str_cat.h"
#include "prometheus/text_serializer.h"
#include "server/metrics/registry.h"

namespace elexirion::metrics {

class HttpServer::Handler : public CivetHandler {
 public:
  using Body = std::function<std::pair<int, std::string>()>;
  Handler(std::string content_type, Body body)
      : content_type_(std::move(content_type)), body_(std::move(body)) {}

  bool handleGet(CivetServer*, mg_connection* conn) override {
    auto [code, body] = body_();
    Send(conn, code, body);
    return true;
  }
  bool handlePost(CivetServer*, mg_connection* conn) override { return NotAllowed(conn); }
  bool handlePut(CivetServer*, mg_connection* conn) override { return NotAllowed(conn); }
  bool handleDelete(CivetServer*, mg_connection* conn) override { return NotAllowed(conn); }
  bool handlePatch(CivetServer*, mg_connection* conn) override { return NotAllowed(conn); }

 private:
  bool NotAllowed(mg_connection* conn) {
    Send(conn, 405, "method not allowed\n");
    return true;
  }
  void Send(mg_connection* conn, int code, const std::string& body) {
    const char* reason = code == 200 ? "OK" : code == 503 ? "Service Unavailable"
                                            : code == 405 ? "Method Not Allowed"
                                                          : "Error";
    std::string head = absl::StrCat("HTTP/1.1 ", code, " ", reason, "\r\nContent-Type: ",
                                    content_type_, "\r\nContent-Length: ", body.size(),
                                    "\r\nConnection: close\r\n\r\n");
    mg_write(conn, head.data(), head.size());
    mg_write(conn, body.data(), body.size());
  }

  std::string content_type_;
  Body body_;
};

HttpServer::HttpServer(Options options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Create(Options options) {
  std::unique_ptr<HttpServer> server(new HttpServer(std::move(options)));
  std::string listen = server->options_.listen;
  // civetweb wants "ip:port" for IPv4 and has no wildcard host syntax: drop 0.0.0.0.
  if (listen.rfind("0.0.0.0:", 0) == 0) listen = listen.substr(8);
  std::vector<std::string> civet_options = {
      "listening_ports", listen,
      "num_threads", std::to_string(server->options_.threads),
      "request_timeout_ms", "10000",
      "enable_keep_alive", "no"};
  try {
    server->server_ = std::make_unique<CivetServer>(civet_options);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("http.listen ", server->options_.listen, ": cannot bind: ", e.what()));
  }
  std::vector<int> ports = server->server_->getListeningPorts();
  if (ports.empty() || ports[0] <= 0) {
    return absl::UnavailableError(
        absl::StrCat("http.listen ", server->options_.listen, ": cannot bind"));
  }
  server->port_ = ports[0];

  server->metrics_ = std::make_unique<Handler>("text/plain; version=0.0.4; charset=utf-8", [] {
    prometheus::TextSerializer serializer;
    return std::pair<int, std::string>(200, serializer.Serialize(DefaultRegistry()->Collect()));
  });
  server->healthz_ = std::make_unique<Handler>("text/plain; charset=utf-8", [] {
    return std::pair<int, std::string>(200, "ok\n");
  });
  HttpServer* self = server.get();
  server->readyz_ = std::make_unique<Handler>("text/plain; charset=utf-8", [self] {
    absl::Status s = self->options_.readiness();
    if (s.ok()) return std::pair<int, std::string>(200, "ready\n");
    return std::pair<int, std::string>(503, absl::StrCat("not ready: ", s.message(), "\n"));
  });
  server->server_->addHandler("/metrics", server->metrics_.get());
  server->server_->addHandler("/healthz", server->healthz_.get());
  server->server_->addHandler("/readyz", server->readyz_.get());
  return server;
}

HttpServer::~HttpServer() {
  if (server_) server_->close();
}

}  // namespace elexirion::metrics
