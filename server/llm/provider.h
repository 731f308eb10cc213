// One provider instance's wire protocol: a single attempt of a call, no retries, limits,
// cache or accounting (the ProviderRouter adds those).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/common/cancellation.h"
#include "server/llm/http_transport.h"
#include "server/llm/llm_client.h"
#include "server/llm/providers_config.h"

namespace elexirion::llm {

struct AttemptOptions {
  // Whole-transfer timeout of this attempt (the instance's request_timeout, shortened to
  // the call's deadline).
  absl::Duration timeout = absl::Seconds(300);
  const CancellationToken* cancel = nullptr;
};

// Thread safe: Call() runs concurrently from many threads.
class Provider {
 public:
  virtual ~Provider() = default;
  // `request.model` is already resolved to a concrete model id. Fills text, finish_reason,
  // input/output tokens, provider_request_id and simulated; errors carry an llm/errors.h
  // kind and never the key.
  virtual absl::StatusOr<LlmResponse> Call(const LlmRequest& request,
                                           const AttemptOptions& options) = 0;
};

// The provider of `config.kind`. HTTP kinds send through `transport` (not owned, must
// outlive the provider) and put `api_key` in the kind's header only.
absl::StatusOr<std::unique_ptr<Provider>> CreateProvider(const InstanceConfig& config,
                                                         std::string api_key,
                                                         HttpTransport* transport);

}  // namespace elexirion::llm
