// ProviderRouter: the production LlmClient. For each call it
//   1. picks the instance (request.provider, else config.default_provider; step types map
//      to instances through InstanceForStepType) and resolves the model (ResolveModel);
//   2. answers from the cache when it can (zero usage, cache_hit = true; no_cache skips it);
//   3. refuses the call when CallOptions.account's budget is spent (kind budget);
//   4. refuses while the instance cools down after `cooldown_after_failures` consecutive
//      failed attempts;
//   5. runs the one retry loop: concurrency slot, requests/min and tokens/min buckets, one
//      attempt, then on a retryable error a sleep of the provider's hint (when it is at most
//      max_retry_after; a longer hint ends the call with rate_limited until T) or
//      min(retry_max_delay, retry_base_delay * 2^n) with full jitter;
//   6. on a final retryable / rate-limited / not-configured failure, tries the instance's
//      fallback once (same model if the fallback has the same kind, else its default);
//   7. prices the tokens from the instance's price table, records usage on the account,
//      stores the response in the cache and updates the metrics.
// Keys are read once in Create() (env variable or file), registered with
// logging::RegisterSecret and handed only to the providers, which put them in headers.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/common/clock.h"
#include "server/llm/http_transport.h"
#include "server/llm/llm_cache.h"
#include "server/llm/llm_client.h"
#include "server/llm/provider.h"
#include "server/llm/providers_config.h"

namespace elexirion::llm {

// Thread safe: Complete() may run from any number of threads at once.
class ProviderRouter final : public LlmClient {
 public:
  using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
  using TransportFactory =
      std::function<absl::StatusOr<std::unique_ptr<HttpTransport>>(const InstanceConfig&)>;

  struct Options {
    ProvidersConfig config = DefaultProvidersConfig();
    // nullptr: no cache.
    std::shared_ptr<LlmCache> cache;
    // Backoff sleeps, rate-limit waits, cooldowns and deadlines use this clock.
    Clock* clock = Clock::Real();
    // Where api_key_env names are looked up; default getenv. Tests inject canary keys.
    EnvLookup env;
    // Transport of each usable HTTP instance; default a CurlHttpTransport per instance
    // (its own connection cache).
    TransportFactory transport_factory;
    // Seed of the backoff jitter; 0 = random.
    uint64_t jitter_seed = 0;
  };

  static absl::StatusOr<std::unique_ptr<ProviderRouter>> Create(Options options);
  ~ProviderRouter() override;

  absl::StatusOr<LlmResponse> Complete(const LlmRequest& request,
                                       const CallOptions& options) override;

  // The instance a pipeline step type runs on (config step_types);
  // INVALID_ARGUMENT for an unknown step type.
  absl::StatusOr<std::string> InstanceForStepType(absl::string_view step_type) const;
  // Concrete model id for `model` (empty = default, alias) on `instance`.
  absl::StatusOr<std::string> ResolveModel(const std::string& instance,
                                           const std::string& model) const;
  std::vector<std::string> InstanceNames() const;
  // False when the instance needs a key that is not set.
  bool IsUsable(const std::string& instance) const;
  const ProvidersConfig& config() const { return options_.config; }

  struct Instance;

 private:
  explicit ProviderRouter(Options options);
  absl::StatusOr<LlmResponse> CompleteOn(Instance& inst, const LlmRequest& request,
                                         const CallOptions& options);
  absl::StatusOr<LlmResponse> RetryLoop(Instance& inst, const LlmRequest& request,
                                        const CallOptions& options);
  std::string ResolveModelOn(const Instance& inst, const std::string& model) const;
  absl::Duration Jitter(absl::Duration max);
  // Sleeps `d` on the clock in slices; false when cancelled meanwhile.
  bool SleepUnlessCancelled(absl::Duration d, const CancellationToken* cancel);

  Options options_;
  std::map<std::string, std::unique_ptr<Instance>> instances_;
  absl::Mutex rng_mu_;
  std::mt19937_64 rng_ ABSL_GUARDED_BY(rng_mu_);
};

}  // namespace elexirion::llm
