#include "server/pipeline/presets.h"

#include <string>

#include "server/pipeline/strings.h"

namespace elexirion::pipeline {
namespace {

using json = nlohmann::json;

json Retry(int max_retries, const char* strategy, json retry_on) {
  return json{{"max_retries", max_retries},
              {"backoff_strategy", strategy},
              {"retry_on", std::move(retry_on)}};
}

json Development() {
  return json{
      {"max_turns", 20},
      {"verbose", true},
      {"output_format", "stream_json"},
      {"allowed_tools", {"Write", "Edit", "Read", "Bash", "Search", "Glob", "Grep"}},
      {"debug_mode", true},
      {"telemetry_enabled", true},
      {"cost_tracking", true},
      {"model", "sonnet"},
      {"retry_config", Retry(3, "exponential", {"timeout", "api_error"})},
      {"timeout_ms", 300000},
      {"system_prompt",
       "You are a helpful development assistant. Focus on writing clean, maintainable code."}};
}

json Production() {
  return json{
      {"max_turns", 10},
      {"verbose", false},
      {"output_format", "json"},
      {"allowed_tools", json::array({"Read"})},
      {"debug_mode", false},
      {"telemetry_enabled", true},
      {"cost_tracking", true},
      {"model", "opus"},
      {"fallback_model", "sonnet"},
      {"retry_config", Retry(2, "linear", json::array({"timeout"}))},
      {"timeout_ms", 120000},
      {"system_prompt", "You are a production assistant. Prioritize safety and reliability."}};
}

json Analysis() {
  return json{{"max_turns", 5},
              {"verbose", true},
              {"output_format", "json"},
              {"allowed_tools", {"Read", "Glob", "Grep"}},
              {"debug_mode", false},
              {"telemetry_enabled", true},
              {"cost_tracking", true},
              {"model", "opus"},
              {"retry_config", Retry(2, "exponential", {"timeout", "api_error"})},
              {"timeout_ms", 180000},
              {"system_prompt",
               "You are a code analysis expert. Provide detailed, structured analysis with "
               "specific recommendations."}};
}

json Chat() {
  return json{{"max_turns", 15},
              {"verbose", false},
              {"output_format", "text"},
              {"allowed_tools", json::array()},
              {"debug_mode", false},
              {"telemetry_enabled", false},
              {"cost_tracking", true},
              {"retry_config", Retry(1, "linear", json::array({"timeout"}))},
              {"timeout_ms", 60000},
              {"system_prompt", "You are a helpful assistant. Provide clear, concise responses."}};
}

json Test() {
  return json{
      {"max_turns", 3},
      {"verbose", true},
      {"output_format", "json"},
      {"allowed_tools", json::array({"Read"})},
      {"debug_mode", true},
      {"telemetry_enabled", false},
      {"cost_tracking", false},
      {"retry_config", Retry(1, "linear", json::array())},
      {"timeout_ms", 30000},
      {"system_prompt", "You are a test assistant. Provide predictable, structured responses."}};
}

}  // namespace

bool IsKnownPreset(std::string_view preset) {
  return preset == "development" || preset == "production" || preset == "analysis" ||
         preset == "chat" || preset == "test";
}

json PresetOptions(std::string_view preset) {
  if (preset == "production") return Production();
  if (preset == "analysis") return Analysis();
  if (preset == "chat") return Chat();
  if (preset == "test") return Test();
  return Development();
}

json DeepMerge(const json& base, const json& overrides) {
  if (!base.is_object() || !overrides.is_object()) return overrides;
  json out = base;
  for (auto it = overrides.begin(); it != overrides.end(); ++it) {
    auto existing = out.find(it.key());
    if (existing != out.end()) {
      *existing = DeepMerge(*existing, it.value());
    } else {
      out[it.key()] = it.value();
    }
  }
  return out;
}

json MergePreset(std::string_view preset, const json& claude_options) {
  return DeepMerge(PresetOptions(preset),
                   claude_options.is_object() ? claude_options : json::object());
}

json ApplyPresetOptimizations(std::string_view preset, json options) {
  auto put_new = [&](const char* text) {
    if (!options.contains("append_system_prompt")) options["append_system_prompt"] = text;
  };
  if (preset == "development") {
    put_new("Use detailed logging and provide comprehensive explanations.");
    json tools = options.value("allowed_tools", json::array());
    if (!tools.is_array()) tools = json::array();
    for (const char* t : {"Write", "Edit", "Read", "Bash", "Search", "Glob", "Grep"}) {
      bool present = false;
      for (const auto& existing : tools) present = present || existing == t;
      if (!present) tools.push_back(t);
    }
    // Enum.uniq keeps the first occurrence of duplicates already in the list.
    json unique = json::array();
    for (const auto& t : tools) {
      bool seen = false;
      for (const auto& u : unique) seen = seen || u == t;
      if (!seen) unique.push_back(t);
    }
    options["allowed_tools"] = unique;
  } else if (preset == "production") {
    put_new("Prioritize safety, security, and minimal resource usage.");
    options["allowed_tools"] = json::array({"Read"});
  } else if (preset == "analysis") {
    put_new("Focus on thorough analysis and provide structured, actionable recommendations.");
    options["allowed_tools"] = {"Read", "Glob", "Grep"};
  } else if (preset == "chat") {
    put_new("Provide helpful, concise responses suitable for conversation.");
    options["allowed_tools"] = json::array();
  } else if (preset == "test") {
    put_new("Provide predictable, deterministic responses suitable for testing.");
    options["allowed_tools"] = json::array({"Read"});
  }
  return options;
}

}  // namespace elexirion::pipeline
