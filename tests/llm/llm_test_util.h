// Helpers for the provider-layer tests: a router built from a YAML snippet, canary keys
// injected through the env lookup (the process environment is never touched).
#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "server/common/clock.h"
#include "server/llm/llm_cache.h"
#include "server/llm/provider_router.h"
#include "server/llm/providers_config.h"
#include "yaml-cpp/yaml.h"

namespace elexirion::llm::testing {

inline absl::StatusOr<ProvidersConfig> ConfigFromYaml(const std::string& yaml) {
  return ParseProvidersConfig(YAML::Load(yaml));
}

struct RouterSetup {
  std::string yaml;
  std::map<std::string, std::string> env;
  Clock* clock = nullptr;
  std::shared_ptr<LlmCache> cache;
};

inline std::unique_ptr<ProviderRouter> MakeRouter(const RouterSetup& setup) {
  absl::StatusOr<ProvidersConfig> config = ConfigFromYaml(setup.yaml);
  EXPECT_TRUE(config.ok()) << config.status();
  if (!config.ok()) return nullptr;
  ProviderRouter::Options options;
  options.config = *config;
  options.cache = setup.cache;
  if (setup.clock != nullptr) options.clock = setup.clock;
  options.jitter_seed = 42;
  std::map<std::string, std::string> env = setup.env;
  options.env = [env](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  absl::StatusOr<std::unique_ptr<ProviderRouter>> router = ProviderRouter::Create(options);
  EXPECT_TRUE(router.ok()) << router.status();
  if (!router.ok()) return nullptr;
  return std::move(*router);
}

inline LlmRequest UserRequest(const std::string& provider, const std::string& text) {
  LlmRequest r;
  r.provider = provider;
  r.messages = {{"user", text}};
  return r;
}

}  // namespace elexirion::llm::testing
