// ProviderRouter: cache, cost and budget, secret hygiene, bounded metric labels.
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"
#include "server/common/logging.h"
#include "server/llm/errors.h"
#include "server/llm/llm_cache.h"
#include "server/metrics/registry.h"
#include "tests/fakes/fake_provider_server.h"
#include "tests/llm/llm_test_util.h"

namespace elexirion::llm {
namespace {

using ::elexirion::fakes::ErrorBody;
using ::elexirion::fakes::FakeApi;
using ::elexirion::fakes::FakeProviderServer;
using ::elexirion::fakes::FakeResponse;
using ::elexirion::fakes::RecordedRequest;
using ::elexirion::llm::testing::MakeRouter;
using ::elexirion::llm::testing::RouterSetup;
using ::elexirion::llm::testing::UserRequest;
using ::testing::HasSubstr;
using ::testing::Not;

std::string MetricsText() {
  return prometheus::TextSerializer().Serialize(metrics::DefaultRegistry()->Collect());
}

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = FakeProviderServer::Start();
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    cache_ = std::make_shared<InMemoryLlmCache>();
  }

  std::unique_ptr<ProviderRouter> Router(const std::string& extra = "") {
    RouterSetup setup;
    setup.yaml = absl::StrCat("providers:\n  o: {kind: openai, base_url: '", server_->base_url(),
                              "/v1', default_model: gpt-test, max_retries: 0, ",
                              "prices: {gpt-test: {input: 3, output: 15}}", extra, "}\n");
    setup.cache = cache_;
    return MakeRouter(setup);
  }

  std::unique_ptr<FakeProviderServer> server_;
  std::shared_ptr<InMemoryLlmCache> cache_;
};

TEST_F(RouterTest, CacheHitMissAndOptOut) {
  auto router = Router();
  ASSERT_NE(router, nullptr);
  FakeResponse answer = FakeResponse::Text("cached answer");
  answer.input_tokens = 100;
  answer.output_tokens = 10;
  server_->SetHandler([answer](const RecordedRequest&) { return answer; });
  UsageAccount account;
  CallOptions options;
  options.account = &account;

  LlmRequest request = UserRequest("o", "What is the capital of France?");
  request.temperature = 0.0;
  absl::StatusOr<LlmResponse> first = router->Complete(request, options);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->cache_hit);
  EXPECT_EQ(first->input_tokens, 100);
  absl::StatusOr<LlmResponse> second = router->Complete(request, options);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->cache_hit);
  EXPECT_EQ(second->text, "cached answer");
  EXPECT_EQ(second->input_tokens, 0);
  EXPECT_EQ(second->output_tokens, 0);
  EXPECT_EQ(second->cost_usd, 0);
  EXPECT_EQ(second->provider, "o");
  EXPECT_EQ(second->model, "gpt-test");
  EXPECT_EQ(server_->request_count(), 1);
  Usage usage = account.Snapshot();
  EXPECT_EQ(usage.llm_calls, 1);
  EXPECT_EQ(usage.cache_hits, 1);
  EXPECT_EQ(usage.input_tokens, 100);

  // Anything that changes the completion is a miss.
  LlmRequest rollout = request;
  rollout.rollout_id = "r2";
  EXPECT_FALSE(router->Complete(rollout, options)->cache_hit);
  LlmRequest warmer = request;
  warmer.temperature = 0.7;
  EXPECT_FALSE(router->Complete(warmer, options)->cache_hit);
  LlmRequest other_model = request;
  other_model.model = "gpt-other";
  EXPECT_FALSE(router->Complete(other_model, options)->cache_hit);
  EXPECT_EQ(server_->request_count(), 4);

  // Opt-out: neither read nor written.
  const size_t entries = cache_->size();
  LlmRequest opt_out = request;
  opt_out.no_cache = true;
  EXPECT_FALSE(router->Complete(opt_out, options)->cache_hit);
  EXPECT_EQ(server_->request_count(), 5);
  opt_out.messages[0].content = "never cached";
  EXPECT_FALSE(router->Complete(opt_out, options)->cache_hit);
  EXPECT_EQ(cache_->size(), entries);
  EXPECT_THAT(MetricsText(),
              HasSubstr("elexirion_llm_cache_requests_total{provider=\"o\",result=\"hit\"}"));
}

TEST_F(RouterTest, CacheKeyIgnoresKeyBaseUrlAndInstanceName) {
  auto other = FakeProviderServer::Start();
  ASSERT_TRUE(other.ok());
  RouterSetup setup;
  setup.yaml = absl::StrCat("providers:\n", "  one: {kind: openai, base_url: '",
                            server_->base_url(), "/v1', default_model: m, ", "api_key_env: K1}\n",
                            "  two: {kind: openai, base_url: '", (*other)->base_url(),
                            "/v1', default_model: m, ", "api_key_env: K2}\n");
  setup.env = {{"K1", "first-key-123456"}, {"K2", "second-key-654321"}};
  setup.cache = cache_;
  auto router = MakeRouter(setup);
  ASSERT_NE(router, nullptr);
  ASSERT_TRUE(router->Complete(UserRequest("one", "same prompt"), {}).ok());
  absl::StatusOr<LlmResponse> r = router->Complete(UserRequest("two", "same prompt"), {});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->cache_hit);
  EXPECT_EQ((*other)->request_count(), 0);

  LlmRequest req = UserRequest("one", "same prompt");
  req.model = "m";
  const std::string canonical = CanonicalRequestJson(ProviderKind::kOpenAi, req);
  EXPECT_THAT(canonical, Not(HasSubstr("http")));
  EXPECT_THAT(canonical, Not(HasSubstr("one")));
  EXPECT_THAT(canonical, HasSubstr("\"rollout_id\""));
  EXPECT_EQ(CacheKey(ProviderKind::kOpenAi, req).size(), 64u);
  EXPECT_NE(CacheKey(ProviderKind::kOpenAi, req), CacheKey(ProviderKind::kAnthropic, req));
}

TEST_F(RouterTest, CostAndBudget) {
  auto router = Router();
  ASSERT_NE(router, nullptr);
  FakeResponse answer = FakeResponse::Text("x");
  answer.input_tokens = 1000;
  answer.output_tokens = 2000;
  server_->SetHandler([answer](const RecordedRequest&) { return answer; });

  UsageAccount account(BudgetLimits{.max_calls = 0, .max_usd = 0.05});
  CallOptions options;
  options.account = &account;
  absl::StatusOr<LlmResponse> r = router->Complete(UserRequest("o", "a"), options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NEAR(r->cost_usd, 1000 * 3e-6 + 2000 * 15e-6, 1e-12);         // $0.033
  ASSERT_TRUE(router->Complete(UserRequest("o", "b"), options).ok());  // $0.066 spent
  absl::StatusOr<LlmResponse> refused = router->Complete(UserRequest("o", "c"), options);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(GetErrorKind(refused.status()), ErrorKind::kBudget);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("budget exhausted"));
  EXPECT_EQ(server_->request_count(), 2);
  Usage usage = account.Snapshot();
  EXPECT_EQ(usage.llm_calls, 2);
  EXPECT_EQ(usage.input_tokens, 2000);
  EXPECT_EQ(usage.output_tokens, 4000);
  EXPECT_NEAR(usage.cost_usd, 0.066, 1e-9);
  // A cached answer costs nothing and is still served.
  absl::StatusOr<LlmResponse> cached = router->Complete(UserRequest("o", "a"), options);
  ASSERT_TRUE(cached.ok());
  EXPECT_TRUE(cached->cache_hit);

  UsageAccount calls(BudgetLimits{.max_calls = 1, .max_usd = 0});
  options.account = &calls;
  ASSERT_TRUE(router->Complete(UserRequest("o", "d"), options).ok());
  EXPECT_EQ(GetErrorKind(router->Complete(UserRequest("o", "e"), options).status()),
            ErrorKind::kBudget);
  EXPECT_EQ(server_->request_count(), 3);
  // The process stays healthy: an unlimited account goes on.
  EXPECT_TRUE(router->Complete(UserRequest("o", "f"), {}).ok());
}

TEST_F(RouterTest, UnknownModelsAreCountedAsOther) {
  auto router = Router();
  ASSERT_NE(router, nullptr);
  LlmRequest r = UserRequest("o", "x");
  r.model = "random-model-8d1f0c";
  ASSERT_TRUE(router->Complete(r, {}).ok());
  ASSERT_TRUE(router->Complete(UserRequest("o", "y"), {}).ok());
  const std::string text = MetricsText();
  EXPECT_THAT(text, Not(HasSubstr("random-model-8d1f0c")));
  EXPECT_THAT(text, HasSubstr("model=\"other\""));
  EXPECT_THAT(text, HasSubstr("model=\"gpt-test\""));
  EXPECT_THAT(text, HasSubstr("elexirion_llm_request_duration_seconds"));
  EXPECT_THAT(text, HasSubstr("elexirion_llm_in_flight"));
  EXPECT_THAT(text, HasSubstr("elexirion_llm_tokens_total"));
  EXPECT_THAT(text, HasSubstr("elexirion_llm_cost_usd_total"));
}

TEST_F(RouterTest, PlainHttpNonLoopbackBaseUrlRefusedAtCreate) {
  ProviderRouter::Options options;
  InstanceConfig bad;
  bad.name = "x";
  bad.kind = ProviderKind::kOpenAi;
  bad.base_url = "http://example.com/v1";
  options.config.instances["x"] = bad;
  absl::StatusOr<std::unique_ptr<ProviderRouter>> router = ProviderRouter::Create(options);
  ASSERT_FALSE(router.ok());
  EXPECT_EQ(router.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(router.status().message()),
              HasSubstr("providers.x.base_url: https required for non-loopback hosts"));
}

// Canary keys must never show up in logs (any level), returned errors, /metrics or the
// cache, whatever the provider does with them.
TEST_F(RouterTest, SecretHygieneWithCanaryKeys) {
  const std::string ant = "sk-ant-CANARY-a1b2c3d4e5f6a7b8c9d0";
  const std::string gem = "AIzaCANARY-0f9e8d7c6b5a4f3e2d1c";
  const std::string oai = "sk-CANARY-1122334455667788990011";
  // The key file path is configuration too: read once, never echoed.
  const std::string key_file = ::testing::TempDir() + "/openai.key";
  {
    FILE* f = std::fopen(key_file.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs((oai + "\n").c_str(), f);
    std::fclose(f);
  }
  std::string log_sink;
  logging::SetMinLevel(logging::Level::kDebug);
  logging::SetSinkForTest(&log_sink);

  RouterSetup setup;
  const std::string base = server_->base_url();
  setup.yaml =
      absl::StrCat("providers:\n", "  anthropic: {base_url: '", base,
                   "', max_retries: 1, retry_base_delay: 1ms}\n", "  gemini: {base_url: '", base,
                   "', max_retries: 1, retry_base_delay: 1ms}\n", "  o: {kind: openai, base_url: '",
                   base, "/v1', api_key_file: '", key_file,
                   "', max_retries: 1, retry_base_delay: 1ms, max_retry_after: 1s}\n");
  setup.env = {{"ANTHROPIC_API_KEY", ant}, {"GEMINI_API_KEY", gem}};
  setup.cache = cache_;
  auto router = MakeRouter(setup);
  ASSERT_NE(router, nullptr);

  // Every failure mode echoes whatever key arrived.
  auto key_of = [](const RecordedRequest& r) {
    std::string k = r.Header("x-api-key") + r.Header("x-goog-api-key") + r.Header("authorization");
    return k;
  };
  std::vector<std::function<FakeResponse(const RecordedRequest&)>> modes = {
      [](const RecordedRequest& r) { return FakeResponse::EchoKeyError(r, 401); },
      [](const RecordedRequest& r) { return FakeResponse::EchoKeyError(r, 403); },
      [&](const RecordedRequest& r) {
        return FakeResponse::Status(500, "Internal error while using key " + key_of(r));
      },
      [&](const RecordedRequest& r) {
        return FakeResponse::Status(
            400, ErrorBody(r.api(), 400, "invalid_request_error", "bad request for " + key_of(r)));
      },
      [&](const RecordedRequest& r) {
        return FakeResponse::Status(200, "{\"oops\": \"" + key_of(r) + "\"");
      },
      [&](const RecordedRequest& r) {
        return FakeResponse::Status(429, ErrorBody(r.api(), 429, "rate_limit_error", key_of(r)),
                                    {{"retry-after", "3600"}});
      },
      [&](const RecordedRequest& r) {
        return FakeResponse::Status(
            429, ErrorBody(r.api(), 429, "insufficient_quota", "quota of " + key_of(r)));
      },
      [&](const RecordedRequest& r) {
        return FakeResponse::Status(302, key_of(r),
                                    {{"Location", "http://127.0.0.1:1/" + key_of(r)}});
      },
      [&](const RecordedRequest&) { return FakeResponse::Text("fine"); },
  };
  std::string errors;
  for (size_t m = 0; m < modes.size(); ++m) {
    server_->SetHandler(modes[m]);
    for (const char* provider : {"anthropic", "gemini", "o"}) {
      absl::StatusOr<LlmResponse> r =
          router->Complete(UserRequest(provider, absl::StrCat("mode ", m)), {});
      if (!r.ok()) absl::StrAppend(&errors, r.status().ToString(), "\n");
    }
  }
  logging::SetSinkForTest(nullptr);
  logging::SetMinLevel(logging::Level::kInfo);

  EXPECT_THAT(errors, HasSubstr("[REDACTED]"));  // the echoes were there, and scrubbed
  const std::string metrics_text = MetricsText();
  const std::string cache_text = cache_->DumpForTest();
  for (const std::string& key : {ant, gem, oai}) {
    EXPECT_THAT(errors, Not(HasSubstr(key)));
    EXPECT_THAT(log_sink, Not(HasSubstr(key)));
    EXPECT_THAT(metrics_text, Not(HasSubstr(key)));
    EXPECT_THAT(cache_text, Not(HasSubstr(key)));
    // Not even a fragment long enough to matter.
    EXPECT_THAT(errors, Not(HasSubstr(key.substr(0, 16))));
  }
  EXPECT_FALSE(log_sink.empty());
  // Keys travel only in their headers.
  for (const RecordedRequest& r : server_->requests()) {
    EXPECT_EQ(r.query, "") << r.path;
    EXPECT_THAT(r.path, Not(HasSubstr("CANARY")));
    EXPECT_THAT(r.body, Not(HasSubstr("CANARY")));
    if (r.api() == FakeApi::kGemini) {
      EXPECT_EQ(r.Header("x-goog-api-key"), gem);
      EXPECT_FALSE(r.HasHeader("authorization"));
    } else if (r.api() == FakeApi::kAnthropic) {
      EXPECT_EQ(r.Header("x-api-key"), ant);
    } else {
      EXPECT_EQ(r.Header("authorization"), "Bearer " + oai);
    }
  }
}

}  // namespace
}  // namespace elexirion::llm
