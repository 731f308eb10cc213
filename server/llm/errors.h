// Typed errors of the LLM layer.
//
// Every error the provider layer returns is an absl::Status with a canonical code plus a
// payload (type URL kErrorPayloadUrl) that names the error kind and, where known, a retry
// hint or the time until which the provider is rate limiting us. Callers branch on the kind
// (GetErrorKind), never on message text:
//
//   kind              code                 retried by the router   meaning
//   retryable         UNAVAILABLE          yes                     5xx/408/409/429/529, resets,
//                                                                  timeouts, malformed bodies
//   rate_limited      RESOURCE_EXHAUSTED   no (reschedule)         provider asked us to wait
//                                                                  longer than max_retry_after;
//                                                                  RateLimitedUntil() gives T
//   quota             RESOURCE_EXHAUSTED   no                      insufficient_quota, spend limit
//   budget            RESOURCE_EXHAUSTED   no                      the caller's UsageAccount
//   auth              INTERNAL             no                      401/403: our key, not the
//                                                                  caller's fault
//   invalid_request   INVALID_ARGUMENT     no                      400/404/413/422
//   not_configured    FAILED_PRECONDITION  no                      no key / unknown instance
//   provider_error    INTERNAL             no                      redirect, oversize response,
//                                                                  other unexpected answers
//   cancelled         CANCELLED            no
//   deadline          DEADLINE_EXCEEDED    no
//
// Messages never contain provider keys (see ScrubProviderText). Thread safe (pure functions).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace elexirion::llm {

inline constexpr char kErrorPayloadUrl[] = "type.elexirion.dev/elexirion.llm.Error";

enum class ErrorKind {
  kNone,  // OK status or a status without our payload
  kRetryable,
  kRateLimited,
  kQuota,
  kBudget,
  kAuth,
  kInvalidRequest,
  kNotConfigured,
  kProviderError,
  kCancelled,
  kDeadline,
};

// Stable lower_snake name ("retryable", "rate_limited", ...); also the metrics outcome label.
const char* ErrorKindName(ErrorKind kind);

// `retry_after`: the provider's hint (retry-after / retry-after-ms / retryDelay), if any.
absl::Status RetryableError(absl::string_view message,
                            std::optional<absl::Duration> retry_after = std::nullopt);
absl::Status RateLimitedUntilError(absl::Time until, absl::string_view message);
absl::Status QuotaError(absl::string_view message);
absl::Status BudgetExhaustedError(absl::string_view message);
absl::Status AuthError(absl::string_view message);
absl::Status InvalidRequestError(absl::string_view message);
absl::Status NotConfiguredError(absl::string_view message);
absl::Status ProviderError(absl::string_view message);
absl::Status CancelledError(absl::string_view message);
absl::Status DeadlineError(absl::string_view message);

// The kind from the payload; statuses without our payload are classified by code
// (CANCELLED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED "budget exhausted" from UsageAccount).
ErrorKind GetErrorKind(const absl::Status& status);
bool IsRetryable(const absl::Status& status);
// True for what a provider outage looks like once the router has given up on a call:
// retryable (connect errors, resets, 5xx/408/409/429/529, timeouts, stalls, cooldown) and
// rate_limited. A malformed 2xx body is provider_error by then, not an outage. Jobs pause on
// these instead of counting them as failures of the example (server/jobs/provider_outage.h).
bool IsProviderUnavailable(const absl::Status& status);
// For kRateLimited errors: the time before which the provider will refuse us.
std::optional<absl::Time> RateLimitedUntil(const absl::Status& status);
// For kRetryable errors: the provider's retry hint, when it gave one.
std::optional<absl::Duration> RetryAfterHint(const absl::Status& status);

// Why a retryable error happened, where the router treats it specially (retry policy and
// the `reason` label of elexirion_llm_retries_total). Kept in the payload.
inline constexpr char kCauseConnectionClosed[] = "connection_closed";  // reused connection
                                                                       // closed, no answer
inline constexpr char kCauseStalled[] = "stalled";                     // mid-body stall window
inline constexpr char kCauseMalformedBody[] = "malformed_body";        // unparsable 2xx body
absl::Status WithRetryCause(absl::Status status, absl::string_view cause);
std::optional<std::string> RetryCauseOf(const absl::Status& status);

// Records the HTTP status that caused an error (kept in the payload).
absl::Status WithHttpStatus(absl::Status status, int http_status);
std::optional<int> HttpStatusOf(const absl::Status& status);

// Text from a provider (error bodies, messages) made safe for a Status message or a log
// line: `secret` and every registered secret replaced by "[REDACTED]", control characters
// flattened, cut to `max_len` bytes.
std::string ScrubProviderText(absl::string_view text, absl::string_view secret,
                              size_t max_len = 300);

}  // namespace elexirion::llm
