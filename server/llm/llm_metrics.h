// Prometheus metrics of the LLM layer, registered on metrics::DefaultRegistry() on first
// use. Label values are bounded: `provider` is a configured instance name, `model` a model
// from the instance's price table / aliases / default model or "other" (the router maps
// it), `outcome` an ErrorKindName or "ok", `reason` a retry cause from a fixed set.
//
//   elexirion_llm_requests_total{provider,model,outcome}        calls (cache hits excluded)
//   elexirion_llm_request_duration_seconds{provider}             histogram, whole call
//   elexirion_llm_tokens_total{provider,model,direction=in|out}
//   elexirion_llm_cost_usd_total{provider,model}
//   elexirion_llm_retries_total{provider,reason}
//   elexirion_llm_cache_requests_total{provider,result=hit|miss}
//   elexirion_llm_in_flight{provider}                            gauge
//   elexirion_llm_cooldowns_total{provider}                      cooldowns started
//
// Thread safe.
#pragma once

#include <cstdint>
#include <string>

namespace elexirion::llm {

void RecordLlmRequest(const std::string& provider, const std::string& model,
                      const std::string& outcome, double seconds);
void RecordLlmTokens(const std::string& provider, const std::string& model, int64_t input,
                     int64_t output);
void RecordLlmCost(const std::string& provider, const std::string& model, double usd);
// `reason`: "status_<code>" for HTTP statuses of the retry table, else "transport".
void RecordLlmRetry(const std::string& provider, const std::string& reason);
void RecordLlmCacheLookup(const std::string& provider, bool hit);
// The instance began a cooldown after repeated failures (alerts watch this).
void RecordLlmCooldown(const std::string& provider);
void AddLlmInFlight(const std::string& provider, int delta);

}  // namespace elexirion::llm
