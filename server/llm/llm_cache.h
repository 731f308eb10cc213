// The LLM response cache: key = SHA-256 (hex) of the canonical JSON of everything that
// determines a completion (provider kind, resolved model, system, messages, temperature,
// max_tokens, stop, json flag, rollout_id). Never the key, the base URL or the instance
// name, so a remapped instance of the same kind shares entries. Values are the JSON of the
// response without usage-only fields (see SerializeCachedResponse).
#pragma once

#include <cstddef>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/llm/llm_client.h"
#include "server/llm/providers_config.h"

namespace elexirion::llm {

// Thread safe implementations required.
class LlmCache {
 public:
  virtual ~LlmCache() = default;
  virtual absl::StatusOr<std::optional<std::string>> Get(const std::string& key) = 0;
  virtual absl::Status Put(const std::string& key, const std::string& value) = 0;
};

// `request.model` must be the resolved model id.
std::string CacheKey(ProviderKind kind, const LlmRequest& request);
// The canonical JSON that CacheKey hashes (exposed for tests).
std::string CanonicalRequestJson(ProviderKind kind, const LlmRequest& request);

// Stored form: text, finish_reason, original token counts, request id, model, simulated.
std::string SerializeCachedResponse(const LlmResponse& response);
absl::StatusOr<LlmResponse> ParseCachedResponse(const std::string& value);

// Bounded in-memory cache, least-recently-used eviction. Thread safe.
class InMemoryLlmCache final : public LlmCache {
 public:
  explicit InMemoryLlmCache(size_t max_entries = 10'000) : max_entries_(max_entries) {}
  absl::StatusOr<std::optional<std::string>> Get(const std::string& key) override;
  absl::Status Put(const std::string& key, const std::string& value) override;
  size_t size() const;
  // Every stored value, for tests (secret hygiene).
  std::string DumpForTest() const;

 private:
  using Entry = std::pair<std::string, std::string>;
  const size_t max_entries_;
  mutable absl::Mutex mu_;
  std::list<Entry> lru_ ABSL_GUARDED_BY(mu_);  // front = most recent
  std::unordered_map<std::string, std::list<Entry>::iterator> index_ ABSL_GUARDED_BY(mu_);
};

}  // namespace elexirion::llm
