// Non-throwing accessors for provider JSON (bodies are untrusted).
#pragma once

#include <cstdint>
#include <string>

#include "nlohmann/json.hpp"

namespace elexirion::llm::json_util {

inline const nlohmann::json* Get(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

inline std::string Str(const nlohmann::json& j, const char* key) {
  const nlohmann::json* v = Get(j, key);
  return (v != nullptr && v->is_string()) ? v->get<std::string>() : std::string();
}

inline int64_t Int(const nlohmann::json& j, const char* key) {
  const nlohmann::json* v = Get(j, key);
  if (v == nullptr || !v->is_number()) return 0;
  if (v->is_number_float()) return static_cast<int64_t>(v->get<double>());
  return v->get<int64_t>();
}

// JSON text that never throws on invalid UTF-8 in untrusted strings.
inline std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace elexirion::llm::json_util
