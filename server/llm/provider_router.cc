#include "server/llm/provider_router.h"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/common/logging.h"
#include "server/llm/curl_http_transport.h"
#include "server/llm/errors.h"
#include "server/llm/llm_metrics.h"
#include "server/llm/rate_limiter.h"
#include "server/metrics/registry.h"

namespace elexirion::llm {

struct ProviderRouter::Instance {
  Instance(InstanceConfig c, Clock* clock)
      : config(std::move(c)),
        limiter(config.max_concurrency),
        rpm(config.requests_per_minute, clock),
        tpm(config.tokens_per_minute, clock) {}

  const InstanceConfig config;
  bool usable = false;
  std::string unusable_reason;
  std::unique_ptr<HttpTransport> transport;
  std::unique_ptr<Provider> provider;
  ConcurrencyLimiter limiter;
  TokenBucket rpm;
  TokenBucket tpm;

  absl::Mutex mu;
  int consecutive_failures ABSL_GUARDED_BY(mu) = 0;
  absl::Time cooldown_until ABSL_GUARDED_BY(mu) = absl::InfinitePast();
};

namespace {

constexpr int64_t kMaxKeyFileBytes = 64 * 1024;

absl::StatusOr<std::string> ReadKeyFile(const std::string& path, const std::string& field) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::FailedPreconditionError(absl::StrCat(field, ": cannot read the key file"));
  std::string data(kMaxKeyFileBytes + 1, '\0');
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  data.resize(static_cast<size_t>(in.gcount()));
  if (static_cast<int64_t>(data.size()) > kMaxKeyFileBytes) {
    return absl::FailedPreconditionError(absl::StrCat(field, ": key file too large"));
  }
  return std::string(absl::StripAsciiWhitespace(data));
}

// The price-table key for `model`: exact, else the longest key that prefixes it
// ("claude-sonnet-4-5-20250929" -> "claude-sonnet-4-5").
const ModelPrice* FindPrice(const InstanceConfig& c, const std::string& model,
                            std::string* matched) {
  if (auto it = c.prices.find(model); it != c.prices.end()) {
    *matched = it->first;
    return &it->second;
  }
  const ModelPrice* best = nullptr;
  size_t best_len = 0;
  for (const auto& [name, price] : c.prices) {
    if (absl::StartsWith(model, name) && name.size() > best_len) {
      best = &price;
      best_len = name.size();
      *matched = name;
    }
  }
  return best;
}

int64_t EstimateInputTokens(const LlmRequest& r) {
  size_t bytes = r.system.size();
  for (const Message& m : r.messages) bytes += m.content.size();
  return static_cast<int64_t>(bytes / 4 + 1);
}

std::string RetryReason(const absl::Status& status) {
  std::optional<int> http = HttpStatusOf(status);
  if (http.has_value() && (*http == 408 || *http == 409 || *http == 429 || *http == 500 ||
                           *http == 502 || *http == 503 || *http == 504 || *http == 529)) {
    return absl::StrCat("status_", *http);
  }
  return http.has_value() ? "status_other" : "transport";
}

}  // namespace

ProviderRouter::ProviderRouter(Options options) : options_(std::move(options)) {}

ProviderRouter::~ProviderRouter() = default;

absl::StatusOr<std::unique_ptr<ProviderRouter>> ProviderRouter::Create(Options options) {
  if (options.clock == nullptr) options.clock = Clock::Real();
  if (!options.env) {
    options.env = [](const std::string& name) -> std::optional<std::string> {
      const char* v = std::getenv(name.c_str());
      if (v == nullptr) return std::nullopt;
      return std::string(v);
    };
  }
  if (!options.transport_factory) {
    options.transport_factory =
        [](const InstanceConfig& c) -> absl::StatusOr<std::unique_ptr<HttpTransport>> {
      CurlHttpTransport::Options t;
      t.max_idle_connections = std::max(4, c.max_concurrency);
      absl::StatusOr<std::unique_ptr<CurlHttpTransport>> transport = CurlHttpTransport::Create(t);
      if (!transport.ok()) return transport.status();
      return std::unique_ptr<HttpTransport>(std::move(*transport));
    };
  }
  const ProvidersConfig& config = options.config;
  if (!config.instances.contains(config.default_provider)) {
    return absl::InvalidArgumentError(
        absl::StrCat("default_provider: unknown instance '", config.default_provider, "'"));
  }
  std::unique_ptr<ProviderRouter> router(new ProviderRouter(std::move(options)));
  router->rng_.seed(router->options_.jitter_seed != 0 ? router->options_.jitter_seed
                                                      : std::random_device{}());
  for (const auto& [name, c] : router->options_.config.instances) {
    auto inst = std::make_unique<Instance>(c, router->options_.clock);
    const std::string prefix = absl::StrCat("providers.", name);
    std::string key;
    if (c.kind != ProviderKind::kSimulated) {
      absl::StatusOr<std::string> url = ValidateBaseUrl(c.base_url);
      if (!url.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(prefix, ".base_url: ", url.status().message()));
      }
      if (!c.api_key_file.empty()) {
        absl::StatusOr<std::string> k = ReadKeyFile(c.api_key_file, prefix + ".api_key_file");
        if (!k.ok()) return k.status();
        key = *k;
      } else if (!c.api_key_env.empty()) {
        key = router->options_.env(c.api_key_env).value_or("");
      }
      logging::RegisterSecret(key);
      const bool needs_key =
          c.kind != ProviderKind::kOpenAi || !c.api_key_env.empty() || !c.api_key_file.empty();
      if (needs_key && key.empty()) {
        inst->unusable_reason =
            absl::StrCat("provider instance '", name, "' has no API key (set ",
                         c.api_key_env.empty() ? "api_key_file" : c.api_key_env, ")");
      } else {
        absl::StatusOr<std::unique_ptr<HttpTransport>> t = router->options_.transport_factory(c);
        if (!t.ok()) return t.status();
        inst->transport = std::move(*t);
      }
    }
    if (inst->unusable_reason.empty()) {
      absl::StatusOr<std::unique_ptr<Provider>> p = CreateProvider(c, key, inst->transport.get());
      if (!p.ok()) return p.status();
      inst->provider = std::move(*p);
      inst->usable = true;
    }
    router->instances_[name] = std::move(inst);
  }
  return router;
}

absl::StatusOr<std::string> ProviderRouter::InstanceForStepType(absl::string_view step_type) const {
  auto it = options_.config.step_types.find(std::string(step_type));
  if (it == options_.config.step_types.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("step type '", step_type, "' is not mapped to a provider instance"));
  }
  return it->second;
}

std::vector<std::string> ProviderRouter::InstanceNames() const {
  std::vector<std::string> out;
  for (const auto& [name, inst] : instances_) out.push_back(name);
  return out;
}

bool ProviderRouter::IsUsable(const std::string& instance) const {
  auto it = instances_.find(instance);
  return it != instances_.end() && it->second->usable;
}

std::string ProviderRouter::ResolveModelOn(const Instance& inst, const std::string& model) const {
  const InstanceConfig& c = inst.config;
  if (model.empty()) return c.default_model;
  if (auto it = c.model_aliases.find(model); it != c.model_aliases.end()) return it->second;
  if (auto it = options_.config.model_aliases.find(model);
      it != options_.config.model_aliases.end()) {
    // Global aliases name Claude models; elsewhere an alias means "this instance's default".
    return c.kind == ProviderKind::kAnthropic ? it->second : c.default_model;
  }
  return model;
}

absl::StatusOr<std::string> ProviderRouter::ResolveModel(const std::string& instance,
                                                         const std::string& model) const {
  auto it = instances_.find(instance);
  if (it == instances_.end()) {
    return InvalidRequestError(absl::StrCat("unknown provider instance '", instance, "'"));
  }
  return ResolveModelOn(*it->second, model);
}

absl::Duration ProviderRouter::Jitter(absl::Duration max) {
  if (max <= absl::ZeroDuration()) return absl::ZeroDuration();
  absl::MutexLock lock(&rng_mu_);
  std::uniform_real_distribution<double> dist(0.0, absl::ToDoubleSeconds(max));
  return absl::Seconds(dist(rng_));
}

bool ProviderRouter::SleepUnlessCancelled(absl::Duration d, const CancellationToken* cancel) {
  Clock* clock = options_.clock;
  absl::Time end = clock->Now() + d;
  while (true) {
    if (cancel != nullptr && cancel->IsCancelled()) return false;
    absl::Duration left = end - clock->Now();
    if (left <= absl::ZeroDuration()) return true;
    clock->SleepFor(std::min(left, absl::Milliseconds(50)));
  }
}

absl::StatusOr<LlmResponse> ProviderRouter::Complete(const LlmRequest& request,
                                                     const CallOptions& options) {
  const std::string name =
      request.provider.empty() ? options_.config.default_provider : request.provider;
  auto it = instances_.find(name);
  if (it == instances_.end()) {
    return InvalidRequestError(absl::StrCat("unknown provider instance '", name, "'"));
  }
  if (request.messages.empty() && request.system.empty()) {
    return InvalidRequestError("request has neither system text nor messages");
  }
  Instance& inst = *it->second;
  absl::StatusOr<LlmResponse> result = CompleteOn(inst, request, options);
  if (result.ok() || inst.config.fallback.empty()) return result;
  ErrorKind kind = GetErrorKind(result.status());
  if (kind != ErrorKind::kRetryable && kind != ErrorKind::kRateLimited &&
      kind != ErrorKind::kNotConfigured) {
    return result;
  }
  Instance& fb = *instances_.at(inst.config.fallback);
  LlmRequest fallback_request = request;
  fallback_request.provider = fb.config.name;
  if (fb.config.kind != inst.config.kind) fallback_request.model.clear();
  logging::Warning("llm fallback", {{"provider", inst.config.name},
                                    {"fallback", fb.config.name},
                                    {"error", std::string(result.status().message())}});
  absl::StatusOr<LlmResponse> second = CompleteOn(fb, fallback_request, options);
  if (second.ok()) return second;
  return result;  // the primary's error says more about what went wrong
}

absl::StatusOr<LlmResponse> ProviderRouter::CompleteOn(Instance& inst, const LlmRequest& request,
                                                       const CallOptions& options) {
  const absl::Time started = absl::Now();
  const InstanceConfig& c = inst.config;
  LlmRequest resolved = request;
  resolved.provider = c.name;
  resolved.model = ResolveModelOn(inst, request.model);
  std::string model_label;
  const ModelPrice* price = FindPrice(c, resolved.model, &model_label);
  if (price == nullptr) {
    bool known = resolved.model == c.default_model;
    for (const auto& [alias, target] : c.model_aliases) known = known || target == resolved.model;
    model_label = known ? resolved.model : metrics::kOtherLabel;
  }
  auto finish_error = [&](absl::Status status) -> absl::StatusOr<LlmResponse> {
    RecordLlmRequest(c.name, model_label, ErrorKindName(GetErrorKind(status)),
                     absl::ToDoubleSeconds(absl::Now() - started));
    logging::Warning("llm call failed", {{"provider", c.name},
                                         {"model", model_label},
                                         {"kind", ErrorKindName(GetErrorKind(status))},
                                         {"error", std::string(status.message())}});
    return status;
  };

  if (!inst.usable) return finish_error(NotConfiguredError(inst.unusable_reason));

  // Cache.
  std::string cache_key;
  const bool use_cache = options_.cache != nullptr && !request.no_cache;
  if (use_cache) {
    cache_key = CacheKey(c.kind, resolved);
    absl::StatusOr<std::optional<std::string>> hit = options_.cache->Get(cache_key);
    if (!hit.ok()) {
      logging::Warning("llm cache read failed", {{"error", std::string(hit.status().message())}});
    } else if (hit->has_value()) {
      absl::StatusOr<LlmResponse> cached = ParseCachedResponse(**hit);
      if (cached.ok()) {
        RecordLlmCacheLookup(c.name, true);
        cached->input_tokens = 0;
        cached->output_tokens = 0;
        cached->cost_usd = 0;
        cached->cache_hit = true;
        cached->provider = c.name;
        if (cached->model.empty()) cached->model = resolved.model;
        cached->latency = absl::Now() - started;
        if (options.account != nullptr) options.account->Record(*cached);
        return cached;
      }
    }
    RecordLlmCacheLookup(c.name, false);
  }

  if (options.account != nullptr) {
    absl::Status budget = options.account->CheckBudget();
    if (!budget.ok()) return finish_error(BudgetExhaustedError(budget.message()));
  }
  {
    absl::MutexLock lock(&inst.mu);
    absl::Time now = options_.clock->Now();
    if (now < inst.cooldown_until) {
      return finish_error(
          RetryableError(absl::StrCat(c.name, ": cooling down after repeated failures until ",
                                      absl::FormatTime(inst.cooldown_until)),
                         inst.cooldown_until - now));
    }
  }

  absl::StatusOr<LlmResponse> result = RetryLoop(inst, resolved, options);
  if (!result.ok()) return finish_error(result.status());

  LlmResponse& r = *result;
  r.provider = c.name;
  r.model = resolved.model;
  r.cache_hit = false;
  if (price != nullptr) {
    r.cost_usd = static_cast<double>(r.input_tokens) * price->input_per_mtok / 1e6 +
                 static_cast<double>(r.output_tokens) * price->output_per_mtok / 1e6;
  }
  r.latency = absl::Now() - started;
  if (use_cache && r.finish_reason != "safety") {
    absl::Status put = options_.cache->Put(cache_key, SerializeCachedResponse(r));
    if (!put.ok()) {
      logging::Warning("llm cache write failed", {{"error", std::string(put.message())}});
    }
  }
  if (options.account != nullptr) options.account->Record(r);
  RecordLlmRequest(c.name, model_label, "ok", absl::ToDoubleSeconds(r.latency));
  RecordLlmTokens(c.name, model_label, r.input_tokens, r.output_tokens);
  RecordLlmCost(c.name, model_label, r.cost_usd);
  return result;
}

absl::StatusOr<LlmResponse> ProviderRouter::RetryLoop(Instance& inst, const LlmRequest& request,
                                                      const CallOptions& options) {
  const InstanceConfig& c = inst.config;
  Clock* clock = options_.clock;
  const CancellationToken* cancel = options.cancel;
  const int64_t estimate_in = EstimateInputTokens(request);
  const int64_t estimate = estimate_in + request.max_tokens.value_or(c.max_tokens_default);
  absl::Status last;
  for (int attempt = 0; attempt <= c.max_retries; ++attempt) {
    if (cancel != nullptr && cancel->IsCancelled()) {
      return CancelledError(absl::StrCat("cancelled: ", cancel->reason()));
    }
    if (clock->Now() >= options.deadline) {
      return DeadlineError(last.ok()
                               ? std::string("deadline exceeded")
                               : absl::StrCat("deadline exceeded; last error: ", last.message()));
    }
    absl::Status admitted = inst.limiter.Acquire(clock, options.deadline, cancel);
    if (!admitted.ok()) return admitted;
    absl::Status rate = inst.rpm.Acquire(1, options.deadline, cancel);
    if (rate.ok()) rate = inst.tpm.Acquire(static_cast<double>(estimate), options.deadline, cancel);
    if (!rate.ok()) {
      inst.limiter.Release();
      return rate;
    }
    AttemptOptions attempt_options;
    attempt_options.timeout = std::min(c.request_timeout, options.deadline - clock->Now());
    attempt_options.cancel = cancel;
    AddLlmInFlight(c.name, 1);
    absl::StatusOr<LlmResponse> r = inst.provider->Call(request, attempt_options);
    AddLlmInFlight(c.name, -1);
    inst.limiter.Release();

    if (r.ok()) {
      // Settle the tokens/min bucket with the real usage.
      inst.tpm.Charge(static_cast<double>(r->input_tokens + r->output_tokens - estimate));
      absl::MutexLock lock(&inst.mu);
      inst.consecutive_failures = 0;
      return r;
    }
    last = r.status();
    if (cancel != nullptr && cancel->IsCancelled()) {
      return CancelledError(absl::StrCat("cancelled: ", cancel->reason()));
    }
    // An attempt cut short by the call's deadline ends the call (its timer may fire a hair
    // before the deadline itself).
    const bool deadline_bound = attempt_options.timeout < c.request_timeout;
    if (clock->Now() >= options.deadline ||
        (deadline_bound && IsRetryable(last) &&
         clock->Now() + absl::Milliseconds(20) >= options.deadline)) {
      return DeadlineError(absl::StrCat("deadline exceeded; last error: ", last.message()));
    }
    if (!IsRetryable(last)) return last;

    bool cooling = false;
    {
      absl::MutexLock lock(&inst.mu);
      if (c.cooldown_after_failures > 0 &&
          ++inst.consecutive_failures >= c.cooldown_after_failures) {
        inst.consecutive_failures = 0;
        inst.cooldown_until = clock->Now() + c.cooldown;
        cooling = true;
      }
    }
    if (cooling) {
      RecordLlmCooldown(c.name);
      logging::Warning("llm provider cooling down",
                       {{"provider", c.name}, {"cooldown_s", absl::ToDoubleSeconds(c.cooldown)}});
    }
    std::optional<absl::Duration> hint = RetryAfterHint(last);
    if (hint.has_value() && *hint > c.max_retry_after) {
      absl::Time until = clock->Now() + *hint;
      return RateLimitedUntilError(
          until, absl::StrCat(c.name, ": rate limited until ",
                              absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", until, absl::UTCTimeZone()),
                              " (", last.message(), ")"));
    }
    if (attempt == c.max_retries || cooling) break;
    absl::Duration delay =
        hint.has_value()
            ? *hint
            : Jitter(std::min(c.retry_max_delay, c.retry_base_delay * std::pow(2.0, attempt)));
    if (clock->Now() + delay >= options.deadline) {
      return DeadlineError(
          absl::StrCat("deadline exceeded before the next retry; last error: ", last.message()));
    }
    RecordLlmRetry(c.name, RetryReason(last));
    logging::Info("llm retry", {{"provider", c.name},
                                {"attempt", attempt + 1},
                                {"delay_ms", absl::ToInt64Milliseconds(delay)},
                                {"error", std::string(last.message())}});
    if (!SleepUnlessCancelled(delay, cancel)) {
      return CancelledError(absl::StrCat("cancelled: ", cancel->reason()));
    }
  }
  return last;
}

}  // namespace elexirion::llm
