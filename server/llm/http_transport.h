// The HTTP seam of the provider layer: providers build an HttpRequest and get an
// HttpResponse (any status code) or a transport-level error. Implementations: the curl
// multi transport (curl_http_transport.h) and test doubles.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/common/cancellation.h"

namespace elexirion::llm {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method = "POST";
  // http:// or https:// only; other schemes are refused by the transport.
  std::string url;
  // Sent as given. Secrets go here, never into `url`.
  HttpHeaders headers;
  std::string body;
  // Time to establish the TCP (and TLS) connection.
  absl::Duration connect_timeout = absl::Seconds(10);
  // Whole transfer, from start to the last body byte.
  absl::Duration total_timeout = absl::Seconds(300);
  // Once the first response byte arrived, the transfer is aborted as soon as fewer than
  // `low_speed_limit` * `low_speed_time` bytes arrived during the last `low_speed_time` (a
  // sliding window, checked every <= 100 ms: a stall mid-body is caught between
  // low_speed_time and low_speed_time + 100 ms after the last byte). Waiting for
  // the response headers is bounded by total_timeout only: a non-streaming LLM call sends
  // nothing while the model thinks.
  int64_t low_speed_limit = 1;
  absl::Duration low_speed_time = absl::Seconds(30);
  // Response bodies larger than this (after decoding, chunked or not) abort the transfer.
  int64_t max_response_bytes = 8 << 20;
  // Polled at least every 100 ms while the transfer runs.
  const CancellationToken* cancel = nullptr;
};

struct HttpResponse {
  int status = 0;
  // Header names lower-cased; in arrival order (only the final response's headers).
  HttpHeaders headers;
  std::string body;
  // The first header named `name` (lower case), if any.
  std::optional<std::string> Header(absl::string_view name) const;
};

// Thread safe: Send() may be called from many threads at once; each call blocks its caller
// until the transfer ends.
class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  // A response with any HTTP status, or an error (llm/errors.h kinds): retryable for
  // connect failures, resets, timeouts and stalls; cancelled; provider_error for an oversize
  // body; invalid_request for a refused URL.
  virtual absl::StatusOr<HttpResponse> Send(const HttpRequest& request) = 0;
};

}  // namespace elexirion::llm
