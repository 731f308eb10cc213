// C++ client library for the elexirion v1 API: one channel with keepalive settings the server
// accepts, a bearer token on every call and a deadline on every call.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "elexirion/v1/dataset.grpc.pb.h"
#include "elexirion/v1/jobs.grpc.pb.h"
#include "elexirion/v1/pipeline.grpc.pb.h"
#include "elexirion/v1/program.grpc.pb.h"
#include "elexirion/v1/telemetry.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace elexirion::client {

// Thread safe: stubs and the channel may be used from many threads.
class Client {
 public:
  struct Options {
    // host:port of the server.
    std::string address = "127.0.0.1:50051";
    // Bearer token sent as "authorization: Bearer <token>"; empty sends none.
    std::string token;
    // Deadline applied to unary calls (streams use their own).
    absl::Duration deadline = absl::Seconds(30);
    // PEM CA to verify a TLS server; empty = plaintext.
    std::string tls_ca_pem;
    // Client certificate and key (PEM) for mTLS.
    std::string tls_cert_pem;
    std::string tls_key_pem;
    // Keepalive ping interval; must not be below the server's grpc.min_client_ping_interval
    // (10 s by default) or the server closes the connection with "too_many_pings".
    absl::Duration keepalive_time = absl::Seconds(30);
  };

  static absl::StatusOr<std::unique_ptr<Client>> Create(Options options);

  // Sets the deadline and the token on a context for one unary call.
  void Prepare(grpc::ClientContext* context) const;
  // Same, with a caller-chosen deadline (InfiniteFuture: none), for streams.
  void Prepare(grpc::ClientContext* context, absl::Duration deadline) const;

  // grpc.health.v1 Check of the whole server (""): OK when SERVING, UNAVAILABLE otherwise.
  absl::Status CheckHealth(const std::string& service = "") const;

  v1::OptimizerService::Stub& optimizer() const { return *optimizer_; }
  v1::PipelineService::Stub& pipelines() const { return *pipelines_; }
  v1::ProgramService::Stub& programs() const { return *programs_; }
  v1::DatasetService::Stub& datasets() const { return *datasets_; }
  v1::TelemetryService::Stub& telemetry() const { return *telemetry_; }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }

 private:
  explicit Client(Options options) : options_(std::move(options)) {}

  Options options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::OptimizerService::Stub> optimizer_;
  std::unique_ptr<v1::PipelineService::Stub> pipelines_;
  std::unique_ptr<v1::ProgramService::Stub> programs_;
  std::unique_ptr<v1::DatasetService::Stub> datasets_;
  std::unique_ptr<v1::TelemetryService::Stub> telemetry_;
};

// grpc::Status -> absl::Status (codes map one to one).
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace elexirion::client
