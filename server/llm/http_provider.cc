#include "server/llm/http_provider.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/llm/errors.h"

namespace elexirion::llm {

std::optional<absl::Duration> ParseRetryAfterHeaders(const HttpResponse& response, absl::Time now) {
  if (std::optional<std::string> ms = response.Header("retry-after-ms"); ms.has_value()) {
    double v = 0;
    if (absl::SimpleAtod(absl::StripAsciiWhitespace(*ms), &v) && v >= 0 && v < 1e12) {
      return absl::Milliseconds(v);
    }
  }
  if (std::optional<std::string> ra = response.Header("retry-after"); ra.has_value()) {
    absl::string_view text = absl::StripAsciiWhitespace(*ra);
    double v = 0;
    if (absl::SimpleAtod(text, &v)) {
      if (v >= 0 && v < 1e9) return absl::Seconds(v);
      return std::nullopt;
    }
    absl::Time when;
    std::string err;
    if (absl::ParseTime("%a, %d %b %Y %H:%M:%S GMT", std::string(text), absl::UTCTimeZone(), &when,
                        &err)) {
      return when > now ? when - now : absl::ZeroDuration();
    }
  }
  return std::nullopt;
}

std::optional<absl::Duration> ParseProtoDuration(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  if (text.empty() || text.back() != 's') return std::nullopt;
  text.remove_suffix(1);
  double v = 0;
  if (!absl::SimpleAtod(text, &v) || v < 0 || v > 1e9) return std::nullopt;
  return absl::Seconds(v);
}

bool IsRetryableHttpStatus(int status) {
  switch (status) {
    case 408:
    case 409:
    case 429:
    case 500:
    case 502:
    case 503:
    case 504:
    case 529:
      return true;
    default:
      return false;
  }
}

HttpProvider::HttpProvider(const InstanceConfig& config, std::string api_key,
                           HttpTransport* transport)
    : config_(config), api_key_(std::move(api_key)), transport_(transport) {}

nlohmann::json HttpProvider::ParseJson(const std::string& body) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return nlohmann::json();
  return j;
}

absl::StatusOr<LlmResponse> HttpProvider::Call(const LlmRequest& request,
                                               const AttemptOptions& options) {
  absl::StatusOr<HttpRequest> http = BuildRequest(request);
  if (!http.ok()) return http.status();
  http->connect_timeout = config_.connect_timeout;
  http->total_timeout = options.timeout;
  http->low_speed_time = config_.low_speed_time;
  http->max_response_bytes = config_.max_response_bytes;
  http->cancel = options.cancel;
  http->headers.emplace_back("user-agent", "elexirion/0.1");

  absl::StatusOr<HttpResponse> response = transport_->Send(*http);
  if (!response.ok()) {
    const absl::Status& s = response.status();
    // Transport messages carry no key, but scrub anyway: one function at every sink.
    absl::Status out(
        s.code(), absl::StrCat(config_.name, ": ", ScrubProviderText(s.message(), api_key_, 500)));
    if (auto p = s.GetPayload(kErrorPayloadUrl); p.has_value()) {
      out.SetPayload(kErrorPayloadUrl, *p);
    }
    return out;
  }
  if (response->status >= 200 && response->status < 300) {
    absl::StatusOr<LlmResponse> parsed = ParseResponse(*response);
    if (!parsed.ok()) {
      // Retryable, but marked: the provider has probably billed this answer, so the router
      // retries it once only (counted as reason malformed_body), never silently.
      return WithRetryCause(
          WithHttpStatus(RetryableError(absl::StrCat(
                             config_.name, ": malformed response (HTTP ", response->status,
                             "): ", ScrubProviderText(parsed.status().message(), api_key_))),
                         response->status),
          kCauseMalformedBody);
    }
    return parsed;
  }
  return WithHttpStatus(ClassifyError(*response), response->status);
}

absl::Status HttpProvider::ClassifyError(const HttpResponse& response) const {
  const int status = response.status;
  nlohmann::json body = ParseJson(response.body);
  ProviderErrorInfo info = body.is_object() ? ParseError(body) : ProviderErrorInfo{};
  std::string detail = info.message.empty() ? response.body : info.message;
  std::string message = absl::StrCat(config_.name, ": HTTP ", status, info.type.empty() ? "" : " ",
                                     ScrubProviderText(info.type, api_key_, 60), ": ",
                                     ScrubProviderText(detail, api_key_));
  if (status >= 300 && status < 400) {
    return ProviderError(
        absl::StrCat(config_.name, ": HTTP ", status, ": redirect not followed (check base_url)"));
  }
  if (status == 401 || status == 403) return AuthError(message);
  if (info.quota) return QuotaError(message);
  if (IsRetryableHttpStatus(status)) {
    std::optional<absl::Duration> hint = ParseRetryAfterHeaders(response, absl::Now());
    if (!hint.has_value()) hint = info.retry_delay;
    return RetryableError(message, hint);
  }
  if (status >= 400 && status < 500) return InvalidRequestError(message);
  return ProviderError(message);
}

}  // namespace elexirion::llm
