// One DSPy Predict call through llm::LlmClient: format with the adapter, call, parse; on a
// ChatAdapter parse failure retry once with the JSONAdapter (one more call), as DSPy's
// ChatAdapter does for every error that is not an LM error. Provider errors (the client's
// status) are returned as they are, never retried here (the router retries).
//
// Thread safety: the function is reentrant; the client must be thread safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "server/llm/llm_client.h"
#include "server/optimizer/adapter.h"

namespace elexirion::optimizer {

using ojson = nlohmann::ordered_json;

// Which model answers and how (DSPy's LM + lm_kwargs). Empty/unset fields keep the request's.
struct LmSettings {
  std::string provider;
  std::string model;
  std::optional<double> temperature;
  std::optional<int> max_tokens;
};

struct PredictRequest {
  const AdapterSignature* signature = nullptr;
  const std::vector<ojson>* demos = nullptr;  // may be null
  ojson inputs = ojson::object();
  // Template of the LLM request: provider, model, sampling settings, stop, rollout id, cache
  // opt-out. Its system text (a pipeline step's system prompt) is put before the adapter's
  // system message; its messages are ignored.
  llm::LlmRequest base;
  AdapterKind adapter = AdapterKind::kChat;
  // DSPy's use_json_adapter_fallback.
  bool json_fallback = true;
};

struct PredictResult {
  ojson outputs = ojson::object();  // output fields in signature order
  int parse_failures = 0;           // responses that did not parse (0, 1 or 2)
  bool used_json_fallback = false;
  int calls = 0;  // LlmClient calls made (1 or 2)
  llm::LlmResponse last_response;
  // Summed over the calls: tokens and cost of provider calls, cache hits counted apart.
  llm::Usage usage;
};

// Returns INVALID_ARGUMENT ("adapter parse failure ...") when no adapter could parse the
// answer; `failures` (optional) receives the parse-failure count even then.
absl::StatusOr<PredictResult> CallPredict(llm::LlmClient& client, const PredictRequest& request,
                                          const llm::CallOptions& options, int* failures = nullptr);

// True for the status CallPredict returns when the answer did not parse.
bool IsParseFailure(const absl::Status& status);

}  // namespace elexirion::optimizer
