// ProvidersConfig parsing and validation, and the typed error helpers.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/llm/errors.h"
#include "server/llm/providers_config.h"
#include "tests/llm/llm_test_util.h"

namespace elexirion::llm {
namespace {

using ::elexirion::llm::testing::ConfigFromYaml;
using ::testing::HasSubstr;

void ExpectInvalid(const std::string& yaml, const std::string& message) {
  absl::StatusOr<ProvidersConfig> c = ConfigFromYaml(yaml);
  ASSERT_FALSE(c.ok()) << yaml;
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr(message)) << yaml;
}

TEST(ProvidersConfigTest, DefaultsWithoutSection) {
  for (const char* yaml : {"", "server: {port: 1}", "~"}) {
    absl::StatusOr<ProvidersConfig> c = ConfigFromYaml(yaml);
    ASSERT_TRUE(c.ok()) << c.status();
    ASSERT_TRUE(c->instances.contains("simulated"));
    ASSERT_TRUE(c->instances.contains("anthropic"));
    ASSERT_TRUE(c->instances.contains("gemini"));
    EXPECT_EQ(c->instances["simulated"].kind, ProviderKind::kSimulated);
    EXPECT_EQ(c->instances["anthropic"].base_url, "https://api.anthropic.com");
    EXPECT_EQ(c->instances["anthropic"].api_key_env, "ANTHROPIC_API_KEY");
    EXPECT_EQ(c->instances["gemini"].api_key_env, "GEMINI_API_KEY");
    EXPECT_EQ(c->default_provider, "simulated");
    for (const char* step : {"claude", "claude_smart", "claude_extract", "claude_robust",
                             "claude_session", "claude_batch"}) {
      EXPECT_EQ(c->step_types[step], "anthropic") << step;
    }
    EXPECT_EQ(c->step_types["gemini"], "gemini");
    EXPECT_EQ(c->step_types["gemini_instructor"], "gemini");
    EXPECT_EQ(c->model_aliases["haiku"], "claude-haiku-4-5");
    EXPECT_EQ(c->model_aliases["sonnet"], "claude-sonnet-4-5");
    EXPECT_EQ(c->model_aliases["opus"], "claude-opus-4-5");
  }
}

TEST(ProvidersConfigTest, ParsesEveryKey) {
  absl::StatusOr<ProvidersConfig> c = ConfigFromYaml(R"(
default_provider: local
providers:
  local:
    kind: openai
    base_url: http://127.0.0.1:8000/v1/
    default_model: llama3
    max_concurrency: 8
    requests_per_minute: 120
    tokens_per_minute: 100000
    connect_timeout: 2s
    request_timeout: 90
    low_speed_time: 500ms
    max_response_bytes: 1048576
    max_retries: 2
    retry_base_delay: 250ms
    retry_max_delay: 4s
    max_retry_after: 30s
    cooldown_after_failures: 3
    cooldown: 1m
    fallback: simulated
    max_tokens_default: 256
    model_aliases: {haiku: llama3-small}
    prices: {llama3: {input: 0.1, output: 0.2}}
  anthropic:
    max_concurrency: 4
    api_key_file: /run/secrets/anthropic
  simulated:
    cue_words: ["Think Carefully"]
    min_relevant_demos: 3
    latency: 10ms
step_types:
  claude: local
  gemini: local
model_aliases:
  sonnet: claude-sonnet-4-5-20250929
)");
  ASSERT_TRUE(c.ok()) << c.status();
  const InstanceConfig& l = c->instances["local"];
  EXPECT_EQ(l.kind, ProviderKind::kOpenAi);
  EXPECT_EQ(l.base_url, "http://127.0.0.1:8000/v1");
  EXPECT_EQ(l.api_key_env, "");  // self-hosted: no key by default
  EXPECT_EQ(l.max_tokens_field, "max_tokens");
  EXPECT_EQ(l.default_model, "llama3");
  EXPECT_EQ(l.max_concurrency, 8);
  EXPECT_EQ(l.requests_per_minute, 120);
  EXPECT_EQ(l.tokens_per_minute, 100000);
  EXPECT_EQ(l.connect_timeout, absl::Seconds(2));
  EXPECT_EQ(l.request_timeout, absl::Seconds(90));
  EXPECT_EQ(l.low_speed_time, absl::Milliseconds(500));
  EXPECT_EQ(l.max_response_bytes, 1048576);
  EXPECT_EQ(l.max_retries, 2);
  EXPECT_EQ(l.retry_base_delay, absl::Milliseconds(250));
  EXPECT_EQ(l.retry_max_delay, absl::Seconds(4));
  EXPECT_EQ(l.max_retry_after, absl::Seconds(30));
  EXPECT_EQ(l.cooldown_after_failures, 3);
  EXPECT_EQ(l.cooldown, absl::Minutes(1));
  EXPECT_EQ(l.fallback, "simulated");
  EXPECT_EQ(l.max_tokens_default, 256);
  EXPECT_EQ(l.model_aliases.at("haiku"), "llama3-small");
  EXPECT_DOUBLE_EQ(l.prices.at("llama3").output_per_mtok, 0.2);
  // Merged onto the default anthropic instance.
  const InstanceConfig& a = c->instances["anthropic"];
  EXPECT_EQ(a.kind, ProviderKind::kAnthropic);
  EXPECT_EQ(a.max_concurrency, 4);
  EXPECT_EQ(a.api_key_env, "");
  EXPECT_EQ(a.api_key_file, "/run/secrets/anthropic");
  EXPECT_EQ(a.base_url, "https://api.anthropic.com");
  EXPECT_FALSE(a.prices.empty());
  const InstanceConfig& s = c->instances["simulated"];
  EXPECT_THAT(s.simulated.cue_words, ::testing::ElementsAre("think carefully"));
  EXPECT_EQ(s.simulated.min_relevant_demos, 3);
  EXPECT_EQ(s.simulated.latency, absl::Milliseconds(10));
  EXPECT_EQ(c->step_types["claude"], "local");
  EXPECT_EQ(c->step_types["claude_smart"], "anthropic");
  EXPECT_EQ(c->model_aliases["sonnet"], "claude-sonnet-4-5-20250929");
  EXPECT_EQ(c->default_provider, "local");
}

TEST(ProvidersConfigTest, PlainHttpToNonLoopbackIsRefused) {
  ExpectInvalid("providers: {anthropic: {base_url: 'http://api.anthropic.com'}}",
                "providers.anthropic.base_url: https required for non-loopback hosts");
  ExpectInvalid("providers: {x: {kind: openai, base_url: 'http://169.254.169.254/v1'}}",
                "providers.x.base_url: https required for non-loopback hosts");
  ExpectInvalid("providers: {x: {kind: openai, base_url: 'http://10.0.0.1:8000/v1'}}",
                "providers.x.base_url: https required");
  ExpectInvalid("providers: {x: {kind: openai, base_url: 'http://127.0.0.1.evil.com/v1'}}",
                "providers.x.base_url: https required");
  ExpectInvalid("providers: {x: {kind: openai, base_url: 'file:///etc/passwd'}}",
                "providers.x.base_url: only https");
  ExpectInvalid("providers: {x: {kind: openai, base_url: 'gopher://127.0.0.1:70/'}}",
                "providers.x.base_url: only https");
  ExpectInvalid("providers: {x: {kind: openai, base_url: 'https://user:pw@host/v1'}}",
                "providers.x.base_url: must not contain");
  ExpectInvalid("providers: {x: {kind: gemini, base_url: 'https://host/?key=abc'}}",
                "providers.x.base_url: must not contain");
  for (const char* ok :
       {"https://api.example.com", "http://127.0.0.1:8000/v1", "http://localhost:11434/v1",
        "http://[::1]:8080", "HTTPS://Host.Example"}) {
    EXPECT_TRUE(ValidateBaseUrl(ok).ok()) << ok;
  }
}

TEST(ProvidersConfigTest, BadInputNamesTheKey) {
  ExpectInvalid("providers: {x: {base_url: 'https://h'}}", "providers.x.kind: required");
  ExpectInvalid("providers: {x: {kind: llama}}", "providers.x.kind: must be one of");
  ExpectInvalid("providers: {anthropic: {max_concurency: 3}}",
                "providers.anthropic.max_concurency: unknown key");
  ExpectInvalid("providers: {anthropic: {max_concurrency: 0}}",
                "providers.anthropic.max_concurrency: must be between 1");
  ExpectInvalid("providers: {anthropic: {request_timeout: soon}}",
                "providers.anthropic.request_timeout: expected a duration");
  ExpectInvalid("providers: {anthropic: {request_timeout: 0s}}",
                "providers.anthropic.request_timeout: must be > 0");
  ExpectInvalid("providers: {anthropic: {requests_per_minute: -1}}",
                "providers.anthropic.requests_per_minute: must be a non-negative number");
  ExpectInvalid("providers: {anthropic: {fallback: nowhere}}",
                "providers.anthropic.fallback: unknown instance 'nowhere'");
  ExpectInvalid("providers: {anthropic: {fallback: anthropic}}",
                "providers.anthropic.fallback: an instance cannot fall back to itself");
  ExpectInvalid("providers: {anthropic: {api_key_env: A, api_key_file: /k}}",
                "providers.anthropic.api_key_file: set only one");
  ExpectInvalid("providers: {anthropic: {api_key_env: 'A-B'}}",
                "providers.anthropic.api_key_env: not an environment variable name");
  ExpectInvalid("providers: {simulated: {kind: openai}}",
                "providers.simulated.kind: the name 'simulated' is reserved");
  ExpectInvalid("providers: {anthropic: {prices: {m: {input: 1, outptu: 2}}}}",
                "providers.anthropic.prices.m.outptu: unknown key");
  ExpectInvalid("providers: {anthropic: {cue_words: [x]}}",
                "providers.anthropic.cue_words: unknown key");
  ExpectInvalid("providers: {anthropic: {retry_base_delay: 10s, retry_max_delay: 1s}}",
                "providers.anthropic.retry_max_delay: must be >= retry_base_delay");
  ExpectInvalid("step_types: {claude: nowhere}", "step_types.claude: unknown instance 'nowhere'");
  ExpectInvalid("model_aliases: {haiku: ''}", "model_aliases.haiku: must not be empty");
  ExpectInvalid("default_provider: nowhere", "default_provider: unknown instance");
  ExpectInvalid("providers: [a, b]", "providers: expected a mapping");
  ExpectInvalid("providers: {'bad name': {kind: openai}}", "providers.bad name");
}

TEST(ErrorsTest, KindsRoundTrip) {
  absl::Status r = RetryableError("x", absl::Milliseconds(1500));
  EXPECT_EQ(r.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(IsRetryable(r));
  EXPECT_EQ(*RetryAfterHint(r), absl::Milliseconds(1500));
  absl::Time t = absl::FromUnixSeconds(1'800'000'000);
  absl::Status rl = RateLimitedUntilError(t, "later");
  EXPECT_EQ(rl.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(GetErrorKind(rl), ErrorKind::kRateLimited);
  EXPECT_EQ(*RateLimitedUntil(rl), t);
  EXPECT_FALSE(IsRetryable(rl));
  EXPECT_EQ(AuthError("k").code(), absl::StatusCode::kInternal);
  EXPECT_EQ(GetErrorKind(AuthError("k")), ErrorKind::kAuth);
  EXPECT_EQ(InvalidRequestError("k").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GetErrorKind(QuotaError("k")), ErrorKind::kQuota);
  EXPECT_EQ(GetErrorKind(BudgetExhaustedError("k")), ErrorKind::kBudget);
  EXPECT_EQ(GetErrorKind(absl::ResourceExhaustedError("budget exhausted: 1 of 1")),
            ErrorKind::kBudget);
  EXPECT_EQ(GetErrorKind(CancelledError("k")), ErrorKind::kCancelled);
  EXPECT_EQ(GetErrorKind(DeadlineError("k")), ErrorKind::kDeadline);
  EXPECT_EQ(GetErrorKind(absl::CancelledError("plain")), ErrorKind::kCancelled);
  EXPECT_EQ(*HttpStatusOf(WithHttpStatus(RetryableError("x"), 503)), 503);
}

TEST(ErrorsTest, ScrubRemovesKeyAndTruncates) {
  const std::string key = "sk-unregistered-CANARY-1234567890";
  std::string text = "bad key " + key + "\n" + std::string(1000, 'a');
  std::string out = ScrubProviderText(text, key, 100);
  EXPECT_EQ(out.find(key), std::string::npos);
  EXPECT_THAT(out, HasSubstr("[REDACTED]"));
  EXPECT_EQ(out.find('\n'), std::string::npos);
  EXPECT_LE(out.size(), 103u);
}

}  // namespace
}  // namespace elexirion::llm
