// LlmCache over the service's Store (persistent across restarts and shared by replicas that
// share the database). Values are the JSON of SerializeCachedResponse: text, finish reason,
// token counts, request id, model; never a key, URL or instance setting.
#pragma once

#include <optional>
#include <string>

#include "server/llm/llm_cache.h"
#include "server/store/store.h"

namespace elexirion::llm {

// Thread safe (the Store is). Does not own the store, which must outlive it.
class StoreLlmCache final : public LlmCache {
 public:
  explicit StoreLlmCache(store::Store* store) : store_(store) {}
  absl::StatusOr<std::optional<std::string>> Get(const std::string& key) override {
    return store_->GetCachedLlmResponse(key);
  }
  absl::Status Put(const std::string& key, const std::string& value) override {
    return store_->PutCachedLlmResponse(key, value);
  }

 private:
  store::Store* const store_;
};

}  // namespace elexirion::llm
