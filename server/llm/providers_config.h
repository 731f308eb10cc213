// Provider configuration: named provider instances, step-type routing and model aliases.
//
// YAML (all keys optional; ParseProvidersConfig takes the mapping that holds them, e.g. the
// document root, and ignores its other keys):
//
//   default_provider: simulated          # instance for requests that name none
//   providers:
//     anthropic:                          # instance name; the defaults below are merged in
//       kind: anthropic                   # anthropic | gemini | openai | simulated
//       base_url: https://api.anthropic.com   # https, or http only for loopback hosts
//       api_key_env: ANTHROPIC_API_KEY    # or api_key_file: /run/secrets/anthropic
//       default_model: claude-sonnet-4-5
//       max_concurrency: 16               # in-flight calls (semaphore)
//       requests_per_minute: 0            # token bucket, 0 = unlimited
//       tokens_per_minute: 0              # token bucket on input+output tokens, 0 = unlimited
//       connect_timeout: 10s              # durations: "500ms", "10s", "2m" or seconds
//       request_timeout: 300s             # one attempt, whole transfer
//       low_speed_time: 30s               # mid-body silence aborting an attempt (sliding)
//       max_response_bytes: 8388608
//       max_retries: 3                    # retries after the first attempt
//       retry_base_delay: 1s              # backoff min(max, base*2^n) with full jitter
//       retry_max_delay: 30s
//       max_retry_after: 60s              # longer provider hints fail with rate_limited(T)
//       cooldown_after_failures: 5        # consecutive failed attempts; 0 = never
//       cooldown: 30s
//       fallback: ""                      # instance tried when this one fails transiently
//       max_tokens_default: 1024          # when a request sets none (Anthropic requires it)
//       max_tokens_field: max_tokens      # openai only: or max_completion_tokens
//       model_aliases: {haiku: llama3}    # per-instance aliases (override the global ones)
//       prices:                           # USD per 1M tokens
//         claude-sonnet-4-5: {input: 3.0, output: 15.0}
//       # simulated only:
//       cue_words: ["step by step"]
//       min_relevant_demos: 2
//       latency: 0s
//   step_types:                           # pipeline step type -> instance
//     claude: anthropic
//   model_aliases:                        # global aliases (Claude model ids by default)
//     sonnet: claude-sonnet-4-5
//
// Defaults without any such section: instances `simulated` (always usable), `anthropic`
// (https://api.anthropic.com, key from ANTHROPIC_API_KEY) and `gemini`
// (https://generativelanguage.googleapis.com, key from GEMINI_API_KEY); step types
// claude, claude_smart, claude_extract, claude_robust, claude_session, claude_batch ->
// anthropic and gemini -> gemini; aliases haiku, sonnet, opus. An instance named like a
// default one inherits that default's settings and overrides the keys it gives.
//
// Base URL conventions: anthropic and gemini take the host root (paths /v1/messages and
// /v1beta/models/M:generateContent are appended); openai takes the API root including its
// version, as the OpenAI SDKs do (https://api.openai.com/v1, http://127.0.0.1:8000/v1), and
// /chat/completions is appended.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace YAML {
class Node;
}

namespace elexirion::llm {

enum class ProviderKind { kAnthropic, kGemini, kOpenAi, kSimulated };

const char* ProviderKindName(ProviderKind kind);

struct ModelPrice {
  double input_per_mtok = 0;   // USD per 1M input tokens
  double output_per_mtok = 0;  // USD per 1M output tokens
};

// Settings of the built-in simulated model (simulated_provider.h documents the rules).
struct SimulatedSettings {
  std::vector<std::string> cue_words = {"step by step"};
  int min_relevant_demos = 2;
  absl::Duration latency = absl::ZeroDuration();
};

struct InstanceConfig {
  std::string name;
  ProviderKind kind = ProviderKind::kSimulated;
  std::string base_url;      // validated, without a trailing slash; empty for simulated
  std::string api_key_env;   // environment variable holding the key
  std::string api_key_file;  // or a file holding it (read once at start)
  std::string default_model;
  int max_concurrency = 16;
  double requests_per_minute = 0;
  double tokens_per_minute = 0;
  absl::Duration connect_timeout = absl::Seconds(10);
  absl::Duration request_timeout = absl::Seconds(300);
  absl::Duration low_speed_time = absl::Seconds(30);
  int64_t max_response_bytes = 8 << 20;
  int max_retries = 3;
  absl::Duration retry_base_delay = absl::Seconds(1);
  absl::Duration retry_max_delay = absl::Seconds(30);
  absl::Duration max_retry_after = absl::Seconds(60);
  int cooldown_after_failures = 5;
  absl::Duration cooldown = absl::Seconds(30);
  std::string fallback;
  int max_tokens_default = 1024;
  std::string max_tokens_field = "max_tokens";  // openai only
  std::map<std::string, std::string> model_aliases;
  std::map<std::string, ModelPrice> prices;
  SimulatedSettings simulated;
};

struct ProvidersConfig {
  std::map<std::string, InstanceConfig> instances;
  std::map<std::string, std::string> step_types;
  std::map<std::string, std::string> model_aliases;
  std::string default_provider = "simulated";
};

// The configuration used when no providers section exists.
ProvidersConfig DefaultProvidersConfig();

// Parses and validates; INVALID_ARGUMENT naming the key ("providers.anthropic.base_url:
// https required for non-loopback hosts"). A null or undefined node gives the defaults.
absl::StatusOr<ProvidersConfig> ParseProvidersConfig(const YAML::Node& node);

// Checks a base URL: https, or http to a loopback host (localhost, 127.0.0.0/8, ::1); no
// user info, query or fragment. Returns it without a trailing slash.
absl::StatusOr<std::string> ValidateBaseUrl(const std::string& url);

}  // namespace elexirion::llm
