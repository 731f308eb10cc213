// The one place where absl::Status becomes grpc::Status.
#pragma once

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace elexirion::api {

// Longest message sent to clients; longer ones end in "...TRUNCATED".
inline constexpr size_t kMaxErrorMessageBytes = 1024;

// Maps the code one to one (absl and gRPC codes are numerically equal), redacts registered
// secrets and truncates the message.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace elexirion::api
