// Structured JSON-lines logging on stderr.
//
// Every line is one JSON object: {"ts":..., "level":..., "msg":..., <fields>}. Strings
// registered with RegisterSecret() are replaced by "[REDACTED]" in every line before it is
// written, so a provider key can never reach the log even through an echoed error body.
//
// This module is thread safe.
#pragma once

#include <string>
#include <string_view>

#include "nlohmann/json.hpp"

namespace elexirion::logging {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Lines below `level` are dropped. Default kInfo.
void SetMinLevel(Level level);
// Parses "debug", "info", "warning"/"warn", "error". Returns false for anything else.
bool ParseLevel(std::string_view text, Level* level);

// Registers a secret that must never be written. Secrets shorter than 4 bytes are ignored
// (they would redact ordinary text).
void RegisterSecret(const std::string& secret);
// Replaces every registered secret in `text` by "[REDACTED]".
std::string Redact(std::string text);

// Redirects output to a string sink for tests; nullptr restores stderr.
void SetSinkForTest(std::string* sink);

void Log(Level level, std::string_view msg, const nlohmann::json& fields = nlohmann::json::object());

inline void Debug(std::string_view msg, const nlohmann::json& f = nlohmann::json::object()) {
  Log(Level::kDebug, msg, f);
}
inline void Info(std::string_view msg, const nlohmann::json& f = nlohmann::json::object()) {
  Log(Level::kInfo, msg, f);
}
inline void Warning(std::string_view msg, const nlohmann::json& f = nlohmann::json::object()) {
  Log(Level::kWarning, msg, f);
}
inline void Error(std::string_view msg, const nlohmann::json& f = nlohmann::json::object()) {
  Log(Level::kError, msg, f);
}

}  // namespace elexirion::logging
