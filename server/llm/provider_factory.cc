#include "absl/strings/str_cat.h"
#include "server/llm/http_providers.h"
#include "server/llm/provider.h"
#include "server/llm/simulated_provider.h"

namespace elexirion::llm {

absl::StatusOr<std::unique_ptr<Provider>> CreateProvider(const InstanceConfig& config,
                                                         std::string api_key,
                                                         HttpTransport* transport) {
  if (config.kind == ProviderKind::kSimulated) {
    return std::unique_ptr<Provider>(new SimulatedProvider(config.simulated));
  }
  if (transport == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(config.name, ": no HTTP transport"));
  }
  switch (config.kind) {
    case ProviderKind::kAnthropic:
      return std::unique_ptr<Provider>(
          new AnthropicProvider(config, std::move(api_key), transport));
    case ProviderKind::kGemini:
      return std::unique_ptr<Provider>(new GeminiProvider(config, std::move(api_key), transport));
    case ProviderKind::kOpenAi:
      return std::unique_ptr<Provider>(new OpenAiProvider(config, std::move(api_key), transport));
    case ProviderKind::kSimulated:
      break;
  }
  return absl::InternalError("unreachable");
}

}  // namespace elexirion::llm
