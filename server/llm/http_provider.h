// Shared part of the HTTP providers (Anthropic, Gemini, OpenAI): send the request built by
// the subclass, then turn the HTTP outcome into a response or a typed error following the
// retry table (reliability.md §2.4):
//   2xx                                   -> subclass parser; unparsable body -> retryable
//                                            with cause malformed_body (retried once)
//   408 409 429 500 502 503 504 529       -> retryable, with the provider's retry hint
//   insufficient_quota / spend limit      -> quota (never retried, whatever the status)
//   401 403                               -> auth
//   other 4xx (400 404 413 422 ...)       -> invalid_request
//   3xx (redirects are never followed)    -> provider_error
//   other statuses                        -> provider_error
// Error messages carry the instance name, the status, the provider's error type and its
// message scrubbed of the key and cut to 300 bytes.
#pragma once

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "server/llm/provider.h"

namespace elexirion::llm {

// What a provider's error body says.
struct ProviderErrorInfo {
  std::string type;     // e.g. "rate_limit_error", "insufficient_quota", "RESOURCE_EXHAUSTED"
  std::string message;  // the provider's message (unscrubbed)
  bool quota = false;   // out of credit / spend limit: never retry
  std::optional<absl::Duration> retry_delay;  // hint found in the body (Gemini retryDelay)
};

// retry-after-ms (milliseconds), then retry-after (seconds or an HTTP date relative to
// `now`). Negative or unparsable values are ignored.
std::optional<absl::Duration> ParseRetryAfterHeaders(const HttpResponse& response, absl::Time now);
// A protobuf JSON duration such as "46s" or "1.5s".
std::optional<absl::Duration> ParseProtoDuration(absl::string_view text);

// True for the statuses the router retries: 408 409 429 500 502 503 504 529.
bool IsRetryableHttpStatus(int status);

// Thread safe (immutable after construction).
class HttpProvider : public Provider {
 public:
  HttpProvider(const InstanceConfig& config, std::string api_key, HttpTransport* transport);

  absl::StatusOr<LlmResponse> Call(const LlmRequest& request, const AttemptOptions& options) final;

 protected:
  // URL, headers (incl. the key) and JSON body of the request.
  virtual absl::StatusOr<HttpRequest> BuildRequest(const LlmRequest& request) const = 0;
  // A 2xx body. Parse failures are reported as errors (the caller makes them retryable).
  virtual absl::StatusOr<LlmResponse> ParseResponse(const HttpResponse& response) const = 0;
  virtual ProviderErrorInfo ParseError(const nlohmann::json& body) const = 0;

  // Parsed JSON body or a null json on failure.
  static nlohmann::json ParseJson(const std::string& body);

  const InstanceConfig config_;
  const std::string api_key_;

 private:
  absl::Status ClassifyError(const HttpResponse& response) const;

  HttpTransport* const transport_;
};

}  // namespace elexirion::llm
