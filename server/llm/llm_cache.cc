#include "server/llm/llm_cache.h"

#include <openssl/evp.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/llm/json_util.h"

namespace elexirion::llm {

using json = nlohmann::json;

std::string CanonicalRequestJson(ProviderKind kind, const LlmRequest& request) {
  json messages = json::array();
  for (const Message& m : request.messages) {
    messages.push_back(json::array({m.role, m.content}));
  }
  // nlohmann's object keys are sorted (std::map), which makes the dump canonical.
  json j = {{"v", 1},
            {"kind", ProviderKindName(kind)},
            {"model", request.model},
            {"system", request.system},
            {"messages", std::move(messages)},
            {"temperature", request.temperature.has_value() ? json(*request.temperature) : json()},
            {"max_tokens", request.max_tokens.has_value() ? json(*request.max_tokens) : json()},
            {"stop", request.stop},
            {"json", request.json_response},
            {"rollout_id", request.rollout_id}};
  // Only when set, so keys of requests without a schema are unchanged.
  if (!request.response_schema.empty()) j["response_schema"] = request.response_schema;
  return json_util::Dump(j);
}

std::string CacheKey(ProviderKind kind, const LlmRequest& request) {
  const std::string canonical = CanonicalRequestJson(kind, request);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(canonical.data(), canonical.size(), digest, &len, EVP_sha256(), nullptr);
  std::string hex;
  hex.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) absl::StrAppendFormat(&hex, "%02x", digest[i]);
  return hex;
}

std::string SerializeCachedResponse(const LlmResponse& r) {
  json j = {{"text", r.text},
            {"finish_reason", r.finish_reason},
            {"input_tokens", r.input_tokens},
            {"output_tokens", r.output_tokens},
            {"provider_request_id", r.provider_request_id},
            {"model", r.model},
            {"simulated", r.simulated}};
  return json_util::Dump(j);
}

absl::StatusOr<LlmResponse> ParseCachedResponse(const std::string& value) {
  json j = json::parse(value, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("text")) {
    return absl::DataLossError("cached LLM response is not valid JSON");
  }
  LlmResponse r;
  r.text = json_util::Str(j, "text");
  r.finish_reason = json_util::Str(j, "finish_reason");
  r.provider_request_id = json_util::Str(j, "provider_request_id");
  r.model = json_util::Str(j, "model");
  const json* sim = json_util::Get(j, "simulated");
  r.simulated = sim != nullptr && sim->is_boolean() && sim->get<bool>();
  return r;
}

absl::StatusOr<std::optional<std::string>> InMemoryLlmCache::Get(const std::string& key) {
  absl::MutexLock lock(&mu_);
  auto it = index_.find(key);
  if (it == index_.end()) return std::optional<std::string>();
  lru_.splice(lru_.begin(), lru_, it->second);
  return std::optional<std::string>(it->second->second);
}

absl::Status InMemoryLlmCache::Put(const std::string& key, const std::string& value) {
  absl::MutexLock lock(&mu_);
  if (auto it = index_.find(key); it != index_.end()) {
    it->second->second = value;
    lru_.splice(lru_.begin(), lru_, it->second);
    return absl::OkStatus();
  }
  lru_.emplace_front(key, value);
  index_[key] = lru_.begin();
  while (lru_.size() > max_entries_ && max_entries_ > 0) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
  return absl::OkStatus();
}

size_t InMemoryLlmCache::size() const {
  absl::MutexLock lock(&mu_);
  return lru_.size();
}

std::string InMemoryLlmCache::DumpForTest() const {
  absl::MutexLock lock(&mu_);
  std::string out;
  for (const auto& [k, v] : lru_) absl::StrAppend(&out, k, "=", v, "\n");
  return out;
}

}  // namespace elexirion::llm
