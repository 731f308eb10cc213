#include "server/llm/errors.h"

#include <cstdint>
#include <vector>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "server/common/logging.h"

namespace elexirion::llm {
namespace {

// Payload text: "kind=<name>[;retry_after_us=<n>][;until_unix_us=<n>]".
absl::Status Make(absl::StatusCode code, ErrorKind kind, absl::string_view message,
                  std::optional<absl::Duration> retry_after = std::nullopt,
                  std::optional<absl::Time> until = std::nullopt) {
  absl::Status status(code, message);
  std::string payload = absl::StrCat("kind=", ErrorKindName(kind));
  if (retry_after.has_value()) {
    absl::StrAppend(&payload, ";retry_after_us=", absl::ToInt64Microseconds(*retry_after));
  }
  if (until.has_value()) {
    absl::StrAppend(&payload, ";until_unix_us=", absl::ToUnixMicros(*until));
  }
  status.SetPayload(kErrorPayloadUrl, absl::Cord(payload));
  return status;
}

std::optional<std::string> PayloadField(const absl::Status& status, absl::string_view name) {
  auto payload = status.GetPayload(kErrorPayloadUrl);
  if (!payload.has_value()) return std::nullopt;
  std::string text(*payload);
  for (absl::string_view part : absl::StrSplit(text, ';')) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(part, absl::MaxSplits('=', 1));
    if (kv.first == name) return std::string(kv.second);
  }
  return std::nullopt;
}

// Appends `;name=value` to the payload of a status made by Make(); others are returned as is.
absl::Status WithPayloadField(absl::Status status, absl::string_view name,
                              absl::string_view value) {
  auto payload = status.GetPayload(kErrorPayloadUrl);
  if (!payload.has_value()) return status;
  std::string text(*payload);
  absl::StrAppend(&text, ";", name, "=", value);
  status.SetPayload(kErrorPayloadUrl, absl::Cord(text));
  return status;
}

}  // namespace

const char* ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kNone:
      return "none";
    case ErrorKind::kRetryable:
      return "retryable";
    case ErrorKind::kRateLimited:
      return "rate_limited";
    case ErrorKind::kQuota:
      return "quota";
    case ErrorKind::kBudget:
      return "budget";
    case ErrorKind::kAuth:
      return "auth";
    case ErrorKind::kInvalidRequest:
      return "invalid_request";
    case ErrorKind::kNotConfigured:
      return "not_configured";
    case ErrorKind::kProviderError:
      return "provider_error";
    case ErrorKind::kCancelled:
      return "cancelled";
    case ErrorKind::kDeadline:
      return "deadline";
  }
  return "none";
}

absl::Status RetryableError(absl::string_view message, std::optional<absl::Duration> retry_after) {
  return Make(absl::StatusCode::kUnavailable, ErrorKind::kRetryable, message, retry_after);
}
absl::Status RateLimitedUntilError(absl::Time until, absl::string_view message) {
  return Make(absl::StatusCode::kResourceExhausted, ErrorKind::kRateLimited, message, std::nullopt,
              until);
}
absl::Status QuotaError(absl::string_view message) {
  return Make(absl::StatusCode::kResourceExhausted, ErrorKind::kQuota, message);
}
absl::Status BudgetExhaustedError(absl::string_view message) {
  return Make(absl::StatusCode::kResourceExhausted, ErrorKind::kBudget, message);
}
absl::Status AuthError(absl::string_view message) {
  return Make(absl::StatusCode::kInternal, ErrorKind::kAuth, message);
}
absl::Status InvalidRequestError(absl::string_view message) {
  return Make(absl::StatusCode::kInvalidArgument, ErrorKind::kInvalidRequest, message);
}
absl::Status NotConfiguredError(absl::string_view message) {
  return Make(absl::StatusCode::kFailedPrecondition, ErrorKind::kNotConfigured, message);
}
absl::Status ProviderError(absl::string_view message) {
  return Make(absl::StatusCode::kInternal, ErrorKind::kProviderError, message);
}
absl::Status CancelledError(absl::string_view message) {
  return Make(absl::StatusCode::kCancelled, ErrorKind::kCancelled, message);
}
absl::Status DeadlineError(absl::string_view message) {
  return Make(absl::StatusCode::kDeadlineExceeded, ErrorKind::kDeadline, message);
}

ErrorKind GetErrorKind(const absl::Status& status) {
  if (status.ok()) return ErrorKind::kNone;
  if (std::optional<std::string> kind = PayloadField(status, "kind"); kind.has_value()) {
    for (ErrorKind k :
         {ErrorKind::kRetryable, ErrorKind::kRateLimited, ErrorKind::kQuota, ErrorKind::kBudget,
          ErrorKind::kAuth, ErrorKind::kInvalidRequest, ErrorKind::kNotConfigured,
          ErrorKind::kProviderError, ErrorKind::kCancelled, ErrorKind::kDeadline}) {
      if (*kind == ErrorKindName(k)) return k;
    }
  }
  switch (status.code()) {
    case absl::StatusCode::kCancelled:
      return ErrorKind::kCancelled;
    case absl::StatusCode::kDeadlineExceeded:
      return ErrorKind::kDeadline;
    case absl::StatusCode::kResourceExhausted:
      // UsageAccount::CheckBudget() returns plain "budget exhausted: ..." statuses.
      if (absl::StartsWith(status.message(), "budget exhausted")) return ErrorKind::kBudget;
      return ErrorKind::kQuota;
    default:
      return ErrorKind::kNone;
  }
}

bool IsRetryable(const absl::Status& status) {
  return GetErrorKind(status) == ErrorKind::kRetryable;
}

bool IsProviderUnavailable(const absl::Status& status) {
  const ErrorKind kind = GetErrorKind(status);
  return kind == ErrorKind::kRetryable || kind == ErrorKind::kRateLimited;
}

std::optional<absl::Time> RateLimitedUntil(const absl::Status& status) {
  std::optional<std::string> v = PayloadField(status, "until_unix_us");
  int64_t us = 0;
  if (!v.has_value() || !absl::SimpleAtoi(*v, &us)) return std::nullopt;
  return absl::FromUnixMicros(us);
}

std::optional<absl::Duration> RetryAfterHint(const absl::Status& status) {
  std::optional<std::string> v = PayloadField(status, "retry_after_us");
  int64_t us = 0;
  if (!v.has_value() || !absl::SimpleAtoi(*v, &us)) return std::nullopt;
  return absl::Microseconds(us);
}

absl::Status WithHttpStatus(absl::Status status, int http_status) {
  return WithPayloadField(std::move(status), "http_status", absl::StrCat(http_status));
}

absl::Status WithRetryCause(absl::Status status, absl::string_view cause) {
  return WithPayloadField(std::move(status), "cause", cause);
}

std::optional<std::string> RetryCauseOf(const absl::Status& status) {
  return PayloadField(status, "cause");
}

std::optional<int> HttpStatusOf(const absl::Status& status) {
  std::optional<std::string> v = PayloadField(status, "http_status");
  int code = 0;
  if (!v.has_value() || !absl::SimpleAtoi(*v, &code)) return std::nullopt;
  return code;
}

std::string ScrubProviderText(absl::string_view text, absl::string_view secret, size_t max_len) {
  std::string out(text);
  if (secret.size() >= 4) absl::StrReplaceAll({{secret, "[REDACTED]"}}, &out);
  out = logging::Redact(std::move(out));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  if (out.size() > max_len) {
    // Cutting may split a secret registered elsewhere; the redaction above already ran on
    // the whole text, so no complete secret survives the cut.
    out.resize(max_len);
    out += "...";
  }
  return out;
}

}  // namespace elexirion::llm
