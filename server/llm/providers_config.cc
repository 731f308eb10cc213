#include "server/llm/providers_config.h"

#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/common/status_macros.h"
#include "yaml-cpp/yaml.h"

namespace elexirion::llm {
namespace {

absl::Status Bad(const std::string& path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

absl::StatusOr<std::string> GetString(const YAML::Node& n, const std::string& path) {
  if (!n.IsScalar()) return Bad(path, "expected a string");
  return n.Scalar();
}

absl::StatusOr<int64_t> GetInt(const YAML::Node& n, const std::string& path, int64_t min,
                               int64_t max) {
  int64_t v = 0;
  if (!n.IsScalar() || !absl::SimpleAtoi(n.Scalar(), &v)) return Bad(path, "expected an integer");
  if (v < min || v > max) {
    return Bad(path, absl::StrCat("must be between ", min, " and ", max));
  }
  return v;
}

absl::StatusOr<double> GetNonNegative(const YAML::Node& n, const std::string& path) {
  double v = 0;
  if (!n.IsScalar() || !absl::SimpleAtod(n.Scalar(), &v)) return Bad(path, "expected a number");
  if (!(v >= 0) || v > 1e12) return Bad(path, "must be a non-negative number");
  return v;
}

// "500ms", "10s", "2m", "1h", or a number of seconds.
absl::StatusOr<absl::Duration> GetDuration(const YAML::Node& n, const std::string& path,
                                           bool allow_zero) {
  if (!n.IsScalar()) return Bad(path, "expected a duration such as 10s or 500ms");
  absl::Duration d;
  double seconds = 0;
  if (absl::SimpleAtod(n.Scalar(), &seconds)) {
    d = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(n.Scalar(), &d)) {
    return Bad(path, "expected a duration such as 10s or 500ms");
  }
  if (d < absl::ZeroDuration() || (!allow_zero && d == absl::ZeroDuration()) ||
      d > absl::Hours(24)) {
    return Bad(path, allow_zero ? "must be between 0 and 24h" : "must be > 0 and at most 24h");
  }
  return d;
}

absl::StatusOr<ProviderKind> ParseKind(const YAML::Node& n, const std::string& path) {
  ASSIGN_OR_RETURN(std::string s, GetString(n, path));
  if (s == "anthropic") return ProviderKind::kAnthropic;
  if (s == "gemini") return ProviderKind::kGemini;
  if (s == "openai") return ProviderKind::kOpenAi;
  if (s == "simulated") return ProviderKind::kSimulated;
  return Bad(path, "must be one of anthropic, gemini, openai, simulated");
}

bool IsLoopbackHost(absl::string_view host) {
  if (absl::EqualsIgnoreCase(host, "localhost") || host == "[::1]") return true;
  std::vector<absl::string_view> parts = absl::StrSplit(host, '.');
  if (parts.size() != 4 || parts[0] != "127") return false;
  for (absl::string_view p : parts) {
    int v = 0;
    if (p.empty() || p.size() > 3 || !absl::SimpleAtoi(p, &v) || v < 0 || v > 255) return false;
  }
  return true;
}

// A fresh instance of `kind` with that kind's public endpoint and key variable.
InstanceConfig InstanceOfKind(const std::string& name, ProviderKind kind) {
  InstanceConfig c;
  c.name = name;
  c.kind = kind;
  switch (kind) {
    case ProviderKind::kAnthropic:
      c.base_url = "https://api.anthropic.com";
      c.api_key_env = "ANTHROPIC_API_KEY";
      c.default_model = "claude-sonnet-4-5";
      // Prices in USD per 1M tokens as published by Anthropic (2025); override in config.
      c.prices = {{"claude-haiku-4-5", {1.0, 5.0}},
                  {"claude-sonnet-4-5", {3.0, 15.0}},
                  {"claude-opus-4-5", {5.0, 25.0}}};
      break;
    case ProviderKind::kGemini:
      c.base_url = "https://generativelanguage.googleapis.com";
      c.api_key_env = "GEMINI_API_KEY";
      c.default_model = "gemini-2.5-flash";
      c.prices = {{"gemini-2.5-flash", {0.30, 2.50}},
                  {"gemini-2.5-flash-lite", {0.10, 0.40}},
                  {"gemini-2.5-pro", {1.25, 10.0}}};
      break;
    case ProviderKind::kOpenAi:
      c.base_url = "https://api.openai.com/v1";
      c.api_key_env = "OPENAI_API_KEY";
      c.default_model = "gpt-4o-mini";
      c.max_tokens_field = "max_completion_tokens";
      break;
    case ProviderKind::kSimulated:
      c.default_model = "simulated-1";
      c.max_concurrency = 256;
      c.max_retries = 0;
      c.cooldown_after_failures = 0;
      break;
  }
  return c;
}

absl::Status ParseInstance(const YAML::Node& n, const std::string& path, InstanceConfig* c) {
  bool key_env_given = false;
  bool key_file_given = false;
  bool base_url_given = false;
  bool max_tokens_field_given = false;
  for (auto it = n.begin(); it != n.end(); ++it) {
    if (!it->first.IsScalar()) return Bad(path, "keys must be strings");
    const std::string key = it->first.Scalar();
    const YAML::Node v = it->second;  // a copy: it-> yields a temporary
    const std::string p = absl::StrCat(path, ".", key);
    if (key == "kind") {
      continue;  // handled by the caller
    } else if (key == "base_url") {
      ASSIGN_OR_RETURN(std::string url, GetString(v, p));
      absl::StatusOr<std::string> valid = ValidateBaseUrl(url);
      if (!valid.ok()) return Bad(p, valid.status().message());
      c->base_url = *valid;
      base_url_given = true;
    } else if (key == "api_key_env") {
      ASSIGN_OR_RETURN(c->api_key_env, GetString(v, p));
      for (char ch : c->api_key_env) {
        if (!absl::ascii_isalnum(ch) && ch != '_')
          return Bad(p, "not an environment variable name");
      }
      key_env_given = true;
    } else if (key == "api_key_file") {
      ASSIGN_OR_RETURN(c->api_key_file, GetString(v, p));
      if (c->api_key_file.empty()) return Bad(p, "must not be empty");
      key_file_given = true;
    } else if (key == "default_model") {
      ASSIGN_OR_RETURN(c->default_model, GetString(v, p));
      if (c->default_model.empty()) return Bad(p, "must not be empty");
    } else if (key == "max_concurrency") {
      ASSIGN_OR_RETURN(int64_t x, GetInt(v, p, 1, 4096));
      c->max_concurrency = static_cast<int>(x);
    } else if (key == "requests_per_minute") {
      ASSIGN_OR_RETURN(c->requests_per_minute, GetNonNegative(v, p));
    } else if (key == "tokens_per_minute") {
      ASSIGN_OR_RETURN(c->tokens_per_minute, GetNonNegative(v, p));
    } else if (key == "connect_timeout") {
      ASSIGN_OR_RETURN(c->connect_timeout, GetDuration(v, p, false));
    } else if (key == "request_timeout") {
      ASSIGN_OR_RETURN(c->request_timeout, GetDuration(v, p, false));
    } else if (key == "low_speed_time") {
      ASSIGN_OR_RETURN(c->low_speed_time, GetDuration(v, p, false));
    } else if (key == "max_response_bytes") {
      ASSIGN_OR_RETURN(c->max_response_bytes, GetInt(v, p, 1024, int64_t{1} << 30));
    } else if (key == "max_retries") {
      ASSIGN_OR_RETURN(int64_t x, GetInt(v, p, 0, 10));
      c->max_retries = static_cast<int>(x);
    } else if (key == "retry_base_delay") {
      ASSIGN_OR_RETURN(c->retry_base_delay, GetDuration(v, p, true));
    } else if (key == "retry_max_delay") {
      ASSIGN_OR_RETURN(c->retry_max_delay, GetDuration(v, p, true));
    } else if (key == "max_retry_after") {
      ASSIGN_OR_RETURN(c->max_retry_after, GetDuration(v, p, true));
    } else if (key == "cooldown_after_failures") {
      ASSIGN_OR_RETURN(int64_t x, GetInt(v, p, 0, 1000));
      c->cooldown_after_failures = static_cast<int>(x);
    } else if (key == "cooldown") {
      ASSIGN_OR_RETURN(c->cooldown, GetDuration(v, p, true));
    } else if (key == "fallback") {
      ASSIGN_OR_RETURN(c->fallback, GetString(v, p));
    } else if (key == "max_tokens_default") {
      ASSIGN_OR_RETURN(int64_t x, GetInt(v, p, 1, 1'000'000));
      c->max_tokens_default = static_cast<int>(x);
    } else if (key == "max_tokens_field") {
      ASSIGN_OR_RETURN(c->max_tokens_field, GetString(v, p));
      if (c->max_tokens_field != "max_tokens" && c->max_tokens_field != "max_completion_tokens") {
        return Bad(p, "must be max_tokens or max_completion_tokens");
      }
      max_tokens_field_given = true;
    } else if (key == "model_aliases") {
      if (!v.IsMap()) return Bad(p, "expected a mapping of alias to model id");
      for (auto a = v.begin(); a != v.end(); ++a) {
        ASSIGN_OR_RETURN(std::string alias, GetString(a->first, p));
        ASSIGN_OR_RETURN(std::string model, GetString(a->second, absl::StrCat(p, ".", alias)));
        if (model.empty()) return Bad(absl::StrCat(p, ".", alias), "must not be empty");
        c->model_aliases[alias] = model;
      }
    } else if (key == "prices") {
      if (!v.IsMap()) return Bad(p, "expected a mapping of model to {input, output}");
      for (auto m = v.begin(); m != v.end(); ++m) {
        ASSIGN_OR_RETURN(std::string model, GetString(m->first, p));
        const std::string mp = absl::StrCat(p, ".", model);
        if (!m->second.IsMap()) return Bad(mp, "expected {input: USD, output: USD} per 1M tokens");
        ModelPrice price;
        for (auto f = m->second.begin(); f != m->second.end(); ++f) {
          ASSIGN_OR_RETURN(std::string field, GetString(f->first, mp));
          const std::string fp = absl::StrCat(mp, ".", field);
          if (field == "input") {
            ASSIGN_OR_RETURN(price.input_per_mtok, GetNonNegative(f->second, fp));
          } else if (field == "output") {
            ASSIGN_OR_RETURN(price.output_per_mtok, GetNonNegative(f->second, fp));
          } else {
            return Bad(fp, "unknown key (expected input, output)");
          }
        }
        c->prices[model] = price;
      }
    } else if (key == "cue_words" && c->kind == ProviderKind::kSimulated) {
      if (!v.IsSequence()) return Bad(p, "expected a list of strings");
      c->simulated.cue_words.clear();
      for (size_t i = 0; i < v.size(); ++i) {
        ASSIGN_OR_RETURN(std::string w, GetString(v[i], absl::StrCat(p, "[", i, "]")));
        if (!w.empty()) c->simulated.cue_words.push_back(absl::AsciiStrToLower(w));
      }
    } else if (key == "min_relevant_demos" && c->kind == ProviderKind::kSimulated) {
      ASSIGN_OR_RETURN(int64_t x, GetInt(v, p, 0, 100));
      c->simulated.min_relevant_demos = static_cast<int>(x);
    } else if (key == "latency" && c->kind == ProviderKind::kSimulated) {
      ASSIGN_OR_RETURN(c->simulated.latency, GetDuration(v, p, true));
    } else {
      return Bad(p, "unknown key");
    }
  }
  if (key_env_given && key_file_given) {
    return Bad(absl::StrCat(path, ".api_key_file"), "set only one of api_key_env and api_key_file");
  }
  if (key_file_given) c->api_key_env.clear();
  if (key_env_given) c->api_key_file.clear();
  if (c->kind == ProviderKind::kOpenAi && base_url_given && !key_env_given) {
    // A self-hosted OpenAI-compatible server usually needs no key.
    if (!absl::StrContains(c->base_url, "api.openai.com")) c->api_key_env.clear();
  }
  if (c->kind == ProviderKind::kOpenAi && base_url_given && !max_tokens_field_given) {
    c->max_tokens_field =
        absl::StrContains(c->base_url, "api.openai.com") ? "max_completion_tokens" : "max_tokens";
  }
  if (c->retry_max_delay < c->retry_base_delay) {
    return Bad(absl::StrCat(path, ".retry_max_delay"), "must be >= retry_base_delay");
  }
  return absl::OkStatus();
}

}  // namespace

const char* ProviderKindName(ProviderKind kind) {
  switch (kind) {
    case ProviderKind::kAnthropic:
      return "anthropic";
    case ProviderKind::kGemini:
      return "gemini";
    case ProviderKind::kOpenAi:
      return "openai";
    case ProviderKind::kSimulated:
      return "simulated";
  }
  return "simulated";
}

absl::StatusOr<std::string> ValidateBaseUrl(const std::string& url) {
  absl::string_view rest = url;
  bool https;
  if (absl::StartsWithIgnoreCase(rest, "https://")) {
    https = true;
    rest.remove_prefix(8);
  } else if (absl::StartsWithIgnoreCase(rest, "http://")) {
    https = false;
    rest.remove_prefix(7);
  } else {
    return absl::InvalidArgumentError("only https (or http to a loopback host) is allowed");
  }
  for (char ch : rest) {
    if (static_cast<unsigned char>(ch) <= 0x20 || ch == '?' || ch == '#' || ch == '@' ||
        ch == '\\') {
      return absl::InvalidArgumentError("must not contain spaces, user info, query or fragment");
    }
  }
  absl::string_view authority = rest.substr(0, rest.find('/'));
  if (authority.empty()) return absl::InvalidArgumentError("missing host");
  absl::string_view host = authority;
  if (absl::StartsWith(authority, "[")) {
    size_t close = authority.find(']');
    if (close == absl::string_view::npos) return absl::InvalidArgumentError("bad IPv6 host");
    host = authority.substr(0, close + 1);
  } else if (size_t colon = authority.find(':'); colon != absl::string_view::npos) {
    host = authority.substr(0, colon);
  }
  if (host.empty()) return absl::InvalidArgumentError("missing host");
  if (!https && !IsLoopbackHost(host)) {
    return absl::InvalidArgumentError("https required for non-loopback hosts");
  }
  std::string out = url;
  while (!out.empty() && out.back() == '/') out.pop_back();
  return out;
}

ProvidersConfig DefaultProvidersConfig() {
  ProvidersConfig config;
  for (auto [name, kind] : {std::pair{"simulated", ProviderKind::kSimulated},
                            std::pair{"anthropic", ProviderKind::kAnthropic},
                            std::pair{"gemini", ProviderKind::kGemini}}) {
    config.instances[name] = InstanceOfKind(name, kind);
  }
  for (const char* step : {"claude", "claude_smart", "claude_extract", "claude_robust",
                           "claude_session", "claude_batch"}) {
    config.step_types[step] = "anthropic";
  }
  config.step_types["gemini"] = "gemini";
  config.step_types["gemini_instructor"] = "gemini";
  config.model_aliases = {
      {"haiku", "claude-haiku-4-5"}, {"sonnet", "claude-sonnet-4-5"}, {"opus", "claude-opus-4-5"}};
  config.default_provider = "simulated";
  return config;
}

absl::StatusOr<ProvidersConfig> ParseProvidersConfig(const YAML::Node& node) {
  ProvidersConfig config = DefaultProvidersConfig();
  try {
    if (!node.IsDefined() || node.IsNull()) return config;
    if (!node.IsMap()) return Bad("providers config", "expected a mapping");

    if (const YAML::Node providers = node["providers"];
        providers.IsDefined() && !providers.IsNull()) {
      if (!providers.IsMap())
        return Bad("providers", "expected a mapping of instance name to settings");
      for (auto it = providers.begin(); it != providers.end(); ++it) {
        ASSIGN_OR_RETURN(std::string name, GetString(it->first, "providers"));
        const std::string path = absl::StrCat("providers.", name);
        if (name.empty() || name.size() > 64) return Bad(path, "bad instance name");
        for (char ch : name) {
          if (!absl::ascii_isalnum(ch) && ch != '_' && ch != '-') {
            return Bad(path, "instance names use letters, digits, '_' and '-'");
          }
        }
        const YAML::Node v = it->second;  // a copy: it-> yields a temporary
        if (!v.IsMap()) return Bad(path, "expected a mapping");
        auto existing = config.instances.find(name);
        InstanceConfig instance;
        if (v["kind"].IsDefined()) {
          ASSIGN_OR_RETURN(ProviderKind kind, ParseKind(v["kind"], path + ".kind"));
          if (existing != config.instances.end() && existing->second.kind == kind) {
            instance = existing->second;
          } else {
            instance = InstanceOfKind(name, kind);
          }
        } else if (existing != config.instances.end()) {
          instance = existing->second;
        } else {
          return Bad(path + ".kind", "required (anthropic, gemini, openai or simulated)");
        }
        if (name == "simulated" && instance.kind != ProviderKind::kSimulated) {
          return Bad(path + ".kind", "the name 'simulated' is reserved for the simulated model");
        }
        RETURN_IF_ERROR(ParseInstance(v, path, &instance));
        config.instances[name] = std::move(instance);
      }
    }

    if (const YAML::Node steps = node["step_types"]; steps.IsDefined() && !steps.IsNull()) {
      if (!steps.IsMap()) return Bad("step_types", "expected a mapping of step type to instance");
      for (auto it = steps.begin(); it != steps.end(); ++it) {
        ASSIGN_OR_RETURN(std::string step, GetString(it->first, "step_types"));
        ASSIGN_OR_RETURN(config.step_types[step],
                         GetString(it->second, absl::StrCat("step_types.", step)));
      }
    }
    if (const YAML::Node aliases = node["model_aliases"];
        aliases.IsDefined() && !aliases.IsNull()) {
      if (!aliases.IsMap()) return Bad("model_aliases", "expected a mapping of alias to model id");
      for (auto it = aliases.begin(); it != aliases.end(); ++it) {
        ASSIGN_OR_RETURN(std::string alias, GetString(it->first, "model_aliases"));
        const std::string p = absl::StrCat("model_aliases.", alias);
        ASSIGN_OR_RETURN(std::string model, GetString(it->second, p));
        if (model.empty()) return Bad(p, "must not be empty");
        config.model_aliases[alias] = model;
      }
    }
    if (const YAML::Node d = node["default_provider"]; d.IsDefined() && !d.IsNull()) {
      ASSIGN_OR_RETURN(config.default_provider, GetString(d, "default_provider"));
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("providers config: ", e.what()));
  }

  // Cross references.
  for (const auto& [name, instance] : config.instances) {
    if (instance.fallback.empty()) continue;
    const std::string p = absl::StrCat("providers.", name, ".fallback");
    if (instance.fallback == name) return Bad(p, "an instance cannot fall back to itself");
    if (!config.instances.contains(instance.fallback)) {
      return Bad(p, absl::StrCat("unknown instance '", instance.fallback, "'"));
    }
  }
  for (const auto& [step, target] : config.step_types) {
    if (!config.instances.contains(target)) {
      return Bad(absl::StrCat("step_types.", step),
                 absl::StrCat("unknown instance '", target, "'"));
    }
  }
  if (!config.instances.contains(config.default_provider)) {
    return Bad("default_provider",
               absl::StrCat("unknown instance '", config.default_provider, "'"));
  }
  return config;
}

}  // namespace elexirion::llm
