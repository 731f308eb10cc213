#include "client/elexirion_client.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace elexirion::client {

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

absl::StatusOr<std::unique_ptr<Client>> Client::Create(Options options) {
  if (options.address.empty()) return absl::InvalidArgumentError("address: required");
  if (options.keepalive_time < absl::Seconds(10)) {
    return absl::InvalidArgumentError(
        "keepalive_time: must be at least 10s (the server's minimum ping interval)");
  }
  std::unique_ptr<Client> client(new Client(std::move(options)));
  const Options& o = client->options_;
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (o.tls_ca_pem.empty()) {
    credentials = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = o.tls_ca_pem;
    ssl.pem_cert_chain = o.tls_cert_pem;
    ssl.pem_private_key = o.tls_key_pem;
    credentials = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS,
              static_cast<int>(absl::ToInt64Milliseconds(o.keepalive_time)));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  args.SetMaxReceiveMessageSize(64 << 20);
  client->channel_ = grpc::CreateCustomChannel(o.address, credentials, args);
  client->optimizer_ = v1::OptimizerService::NewStub(client->channel_);
  client->pipelines_ = v1::PipelineService::NewStub(client->channel_);
  client->programs_ = v1::ProgramService::NewStub(client->channel_);
  client->datasets_ = v1::DatasetService::NewStub(client->channel_);
  client->telemetry_ = v1::TelemetryService::NewStub(client->channel_);
  return client;
}

void Client::Prepare(grpc::ClientContext* context) const {
  Prepare(context, options_.deadline);
}

void Client::Prepare(grpc::ClientContext* context, absl::Duration deadline) const {
  if (deadline != absl::InfiniteDuration()) {
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::milliseconds(absl::ToInt64Milliseconds(deadline)));
  }
  if (!options_.token.empty()) {
    context->AddMetadata("authorization", absl::StrCat("Bearer ", options_.token));
  }
}

absl::Status Client::CheckHealth(const std::string& service) const {
  auto stub = grpc::health::v1::Health::NewStub(channel_);
  grpc::ClientContext context;
  Prepare(&context);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  absl::Status status = FromGrpcStatus(stub->Check(&context, request, &response));
  if (!status.ok()) return status;
  if (response.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
    return absl::UnavailableError(absl::StrCat(
        "not serving: ", grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
                             response.status())));
  }
  return absl::OkStatus();
}

}  // namespace elexirion::client
