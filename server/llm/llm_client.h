// The LlmClient seam: everything the pipeline engine and the optimizer send to a model goes
// through this interface. Implementations: the provider router over real HTTP (Anthropic,
// Gemini, OpenAI-compatible), the built-in simulated model, and test doubles.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/common/cancellation.h"
#include "server/llm/usage.h"

namespace elexirion::llm {

struct Message {
  std::string role;  // "user" or "assistant"
  std::string content;
};

struct LlmRequest {
  // Provider instance name from config ("anthropic", "gemini", "local", "simulated").
  // Empty: the router's default instance.
  std::string provider;
  // Model id or alias ("haiku", "sonnet", "opus"). Empty: the instance's default model.
  std::string model;
  std::string system;
  std::vector<Message> messages;
  std::optional<double> temperature;
  std::optional<int> max_tokens;
  std::vector<std::string> stop;
  // Ask the provider for a JSON object response.
  bool json_response = false;
  // JSON schema (as JSON text) the response must follow; "" for none. Gemini sends it as
  // generationConfig.responseSchema (with responseMimeType application/json); other
  // providers rely on json_response and the prompt.
  std::string response_schema;
  // Part of the cache key: distinct rollout ids give distinct (uncached) samples of the
  // same prompt, as DSPy's rollout_id does.
  std::string rollout_id;
  // Skip the persistent cache (neither read nor written).
  bool no_cache = false;
};

struct LlmResponse {
  std::string text;
  // Normalised: "stop", "length", "safety", "other".
  std::string finish_reason;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  double cost_usd = 0;
  absl::Duration latency = absl::ZeroDuration();
  bool cache_hit = false;
  std::string provider_request_id;
  // Provider instance and resolved model that answered.
  std::string provider;
  std::string model;
  // True when the built-in simulated model produced the answer.
  bool simulated = false;
};

// Per-call context: deadline, cancellation and the caller's accounting.
struct CallOptions {
  // Absolute deadline for the whole call including retries. InfiniteFuture: the instance's
  // own timeouts apply.
  absl::Time deadline = absl::InfiniteFuture();
  // When set and cancelled, the call aborts within 1 s with CANCELLED.
  const CancellationToken* cancel = nullptr;
  // When set, the call is refused with RESOURCE_EXHAUSTED once the account's budget is spent,
  // and its usage is recorded on success.
  UsageAccount* account = nullptr;
};

// Thread safe: many calls may be in flight at once from different threads.
class LlmClient {
 public:
  virtual ~LlmClient() = default;
  virtual absl::StatusOr<LlmResponse> Complete(const LlmRequest& request,
                                               const CallOptions& options) = 0;
};

}  // namespace elexirion::llm
