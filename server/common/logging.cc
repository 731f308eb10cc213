#include "server/common/logging.h"

#include <atomic>
#include <cstdio>
#include <vector>

#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace elexirion::logging {
namespace {

std::atomic<int> g_min_level{static_cast<int>(Level::kInfo)};

struct State {
  absl::Mutex mu;
  std::vector<std::string> secrets ABSL_GUARDED_BY(mu);
  std::string* sink ABSL_GUARDED_BY(mu) = nullptr;
};

State& GetState() {
  static State* state = new State();
  return *state;
}

const char* LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarning:
      return "warning";
    case Level::kError:
      return "error";
  }
  return "info";
}

}  // namespace

void SetMinLevel(Level level) { g_min_level.store(static_cast<int>(level)); }

bool ParseLevel(std::string_view text, Level* level) {
  if (text == "debug") {
    *level = Level::kDebug;
  } else if (text == "info") {
    *level = Level::kInfo;
  } else if (text == "warning" || text == "warn") {
    *level = Level::kWarning;
  } else if (text == "error") {
    *level = Level::kError;
  } else {
    return false;
  }
  return true;
}

void RegisterSecret(const std::string& secret) {
  if (secret.size() < 4) return;
  State& state = GetState();
  absl::MutexLock lock(&state.mu);
  for (const auto& s : state.secrets) {
    if (s == secret) return;
  }
  state.secrets.push_back(secret);
}

std::string Redact(std::string text) {
  State& state = GetState();
  absl::MutexLock lock(&state.mu);
  for (const auto& secret : state.secrets) {
    absl::StrReplaceAll({{secret, "[REDACTED]"}}, &text);
  }
  return text;
}

void SetSinkForTest(std::string* sink) {
  State& state = GetState();
  absl::MutexLock lock(&state.mu);
  state.sink = sink;
}

void Log(Level level, std::string_view msg, const nlohmann::json& fields) {
  if (static_cast<int>(level) < g_min_level.load()) return;
  nlohmann::json line = nlohmann::json::object();
  line["ts"] = absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(), absl::UTCTimeZone());
  line["level"] = LevelName(level);
  line["msg"] = std::string(msg);
  if (fields.is_object()) {
    for (auto it = fields.begin(); it != fields.end(); ++it) line[it.key()] = it.value();
  }
  // dump() with the replace handler never throws on invalid UTF-8 from untrusted text.
  std::string text =
      Redact(line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)) + "\n";
  State& state = GetState();
  absl::MutexLock lock(&state.mu);
  if (state.sink != nullptr) {
    state.sink->append(text);
    return;
  }
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

}  // namespace elexirion::logging
