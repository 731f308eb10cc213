// Bearer-token authentication, checked at the top of every handler (gRPC 1.51 offers no
// safe hook on a plaintext port: an AuthMetadataProcessor there aborts the process, and
// interceptors cannot reject calls). grpc.health.v1 never goes through it.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "grpcpp/server_context.h"

namespace elexirion::api {

// Thread safe (immutable after construction).
class Authenticator {
 public:
  // No tokens: authentication disabled, every call allowed.
  explicit Authenticator(std::vector<std::string> tokens) : tokens_(std::move(tokens)) {}

  bool enabled() const { return !tokens_.empty(); }

  // OK, or UNAUTHENTICATED when the "authorization: Bearer <token>" metadata is missing or
  // does not match a configured token (compared in constant time).
  absl::Status Authorize(const grpc::ServerContextBase& context) const;

 private:
  std::vector<std::string> tokens_;
};

}  // namespace elexirion::api
