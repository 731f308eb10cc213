// Request and response shapes of the three provider APIs, over real HTTP to the fake
// provider.
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/llm/errors.h"
#include "tests/fakes/fake_provider_server.h"
#include "tests/llm/llm_test_util.h"

namespace elexirion::llm {
namespace {

using ::elexirion::fakes::FakeApi;
using ::elexirion::fakes::FakeProviderServer;
using ::elexirion::fakes::FakeResponse;
using ::elexirion::fakes::RecordedRequest;
using ::elexirion::llm::testing::MakeRouter;
using ::elexirion::llm::testing::RouterSetup;
using ::testing::HasSubstr;
using json = nlohmann::json;

class ProvidersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = FakeProviderServer::Start();
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    RouterSetup setup;
    const std::string base = server_->base_url();
    setup.yaml = absl::StrCat(
        R"(
providers:
  anthropic: {base_url: ')",
        base, R"(', max_retries: 0}
  gemini: {base_url: ')",
        base, R"(', max_retries: 0}
  openai: {kind: openai, base_url: ')",
        base, R"(/v1', api_key_env: OPENAI_KEY, default_model: gpt-test, max_retries: 0}
  local: {kind: openai, base_url: ')",
        base, R"(/v1', default_model: llama3, max_retries: 0}
)");
    setup.env = {{"ANTHROPIC_API_KEY", "ant-key-for-shape-test"},
                 {"GEMINI_API_KEY", "gem-key-for-shape-test"},
                 {"OPENAI_KEY", "oai-key-for-shape-test"}};
    router_ = MakeRouter(setup);
    ASSERT_NE(router_, nullptr);
  }

  LlmRequest FullRequest(const std::string& provider, const std::string& model) {
    LlmRequest r;
    r.provider = provider;
    r.model = model;
    r.system = "You are terse.";
    r.messages = {{"user", "Hi"}, {"assistant", "Hello"}, {"user", "What is 2+2?"}};
    r.temperature = 0.25;
    r.max_tokens = 77;
    r.stop = {"END"};
    return r;
  }

  std::unique_ptr<FakeProviderServer> server_;
  std::unique_ptr<ProviderRouter> router_;
};

TEST_F(ProvidersTest, AnthropicRequestAndResponseShape) {
  FakeResponse answer = FakeResponse::Text("Four.");
  answer.input_tokens = 21;
  answer.output_tokens = 3;
  answer.headers = {{"request-id", "req_123"}};
  server_->Enqueue(answer);
  absl::StatusOr<LlmResponse> r = router_->Complete(FullRequest("anthropic", "sonnet"), {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->text, "Four.");
  EXPECT_EQ(r->finish_reason, "stop");
  EXPECT_EQ(r->input_tokens, 21);
  EXPECT_EQ(r->output_tokens, 3);
  EXPECT_EQ(r->provider_request_id, "req_123");
  EXPECT_EQ(r->provider, "anthropic");
  EXPECT_EQ(r->model, "claude-sonnet-4-5");
  EXPECT_FALSE(r->simulated);
  EXPECT_FALSE(r->cache_hit);
  // $3 / $15 per 1M tokens.
  EXPECT_NEAR(r->cost_usd, 21 * 3e-6 + 3 * 15e-6, 1e-12);

  ASSERT_EQ(server_->request_count(), 1);
  RecordedRequest req = server_->requests()[0];
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.path, "/v1/messages");
  EXPECT_EQ(req.query, "");
  EXPECT_EQ(req.Header("x-api-key"), "ant-key-for-shape-test");
  EXPECT_EQ(req.Header("anthropic-version"), "2023-06-01");
  EXPECT_EQ(req.Header("content-type"), "application/json");
  EXPECT_FALSE(req.HasHeader("authorization"));
  json body = req.Json();
  EXPECT_EQ(body["model"], "claude-sonnet-4-5");
  EXPECT_EQ(body["max_tokens"], 77);
  EXPECT_EQ(body["system"], "You are terse.");
  EXPECT_DOUBLE_EQ(body["temperature"].get<double>(), 0.25);
  EXPECT_EQ(body["stop_sequences"], json::array({"END"}));
  ASSERT_EQ(body["messages"].size(), 3u);
  EXPECT_EQ(body["messages"][0], json({{"role", "user"}, {"content", "Hi"}}));
  EXPECT_EQ(body["messages"][1], json({{"role", "assistant"}, {"content", "Hello"}}));
}

TEST_F(ProvidersTest, AnthropicDefaultsAndFinishReasons) {
  FakeResponse length = FakeResponse::Text("cut");
  length.finish = "length";
  server_->Enqueue(length);
  FakeResponse refusal = FakeResponse::Text("");
  refusal.finish = "safety";
  server_->Enqueue(refusal);
  LlmRequest r = testing::UserRequest("anthropic", "x");
  r.json_response = true;
  absl::StatusOr<LlmResponse> a = router_->Complete(r, {});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->finish_reason, "length");
  absl::StatusOr<LlmResponse> b = router_->Complete(testing::UserRequest("anthropic", "y"), {});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->finish_reason, "safety");
  json body = server_->requests()[0].Json();
  EXPECT_EQ(body["max_tokens"], 1024);  // required by the API: the instance default
  EXPECT_EQ(body["model"], "claude-sonnet-4-5");
  EXPECT_FALSE(body.contains("temperature"));
  EXPECT_THAT(body["system"].get<std::string>(), HasSubstr("JSON object"));
}

TEST_F(ProvidersTest, GeminiRequestAndResponseShape) {
  std::string body_text = R"({"candidates":[{"content":{"role":"model","parts":[
      {"text":"thinking...","thought":true},{"text":"Fo"},{"text":"ur"}]},
      "finishReason":"MAX_TOKENS"}],
      "usageMetadata":{"promptTokenCount":30,"candidatesTokenCount":4,"thoughtsTokenCount":6},
      "responseId":"resp_9"})";
  server_->Enqueue(FakeResponse::Status(200, body_text));
  LlmRequest request = FullRequest("gemini", "");
  request.json_response = true;
  absl::StatusOr<LlmResponse> r = router_->Complete(request, {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->text, "Four");
  EXPECT_EQ(r->finish_reason, "length");
  EXPECT_EQ(r->input_tokens, 30);
  EXPECT_EQ(r->output_tokens, 10);
  EXPECT_EQ(r->provider_request_id, "resp_9");
  EXPECT_EQ(r->model, "gemini-2.5-flash");

  RecordedRequest req = server_->requests()[0];
  EXPECT_EQ(req.path, "/v1beta/models/gemini-2.5-flash:generateContent");
  EXPECT_EQ(req.query, "");  // never ?key=
  EXPECT_EQ(req.Header("x-goog-api-key"), "gem-key-for-shape-test");
  EXPECT_FALSE(req.HasHeader("authorization"));
  EXPECT_FALSE(req.HasHeader("x-api-key"));
  json body = req.Json();
  EXPECT_EQ(body["systemInstruction"]["parts"][0]["text"], "You are terse.");
  ASSERT_EQ(body["contents"].size(), 3u);
  EXPECT_EQ(body["contents"][1]["role"], "model");
  EXPECT_EQ(body["contents"][2]["parts"][0]["text"], "What is 2+2?");
  EXPECT_DOUBLE_EQ(body["generationConfig"]["temperature"].get<double>(), 0.25);
  EXPECT_EQ(body["generationConfig"]["maxOutputTokens"], 77);
  EXPECT_EQ(body["generationConfig"]["stopSequences"], json::array({"END"}));
  EXPECT_EQ(body["generationConfig"]["responseMimeType"], "application/json");
}

TEST_F(ProvidersTest, GeminiSendsTheResponseSchema) {
  // gemini_instructor's structured output: the schema goes into generationConfig with the
  // JSON mime type; a schema that is not a JSON object is refused before any HTTP call.
  server_->Enqueue(FakeResponse::Text(R"({"text":"ok"})"));
  LlmRequest request = testing::UserRequest("gemini", "Assess it.");
  request.response_schema =
      R"({"type":"object","properties":{"text":{"type":"string"}},"required":["text"]})";
  absl::StatusOr<LlmResponse> r = router_->Complete(request, {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->text, R"({"text":"ok"})");
  ASSERT_EQ(server_->requests().size(), 1u);
  json config = server_->requests()[0].Json()["generationConfig"];
  EXPECT_EQ(config["responseMimeType"], "application/json");
  EXPECT_EQ(config["responseSchema"], json::parse(request.response_schema));

  request.response_schema = "[1, 2]";
  absl::StatusOr<LlmResponse> bad = router_->Complete(request, {});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(server_->requests().size(), 1u);
}

TEST_F(ProvidersTest, GeminiSafetyBlockIsAResponseNotARetry) {
  server_->Enqueue(FakeResponse::Status(
      200,
      R"({"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":5}})"));
  absl::StatusOr<LlmResponse> r = router_->Complete(testing::UserRequest("gemini", "x"), {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->finish_reason, "safety");
  EXPECT_EQ(r->text, "");
  FakeResponse safety = FakeResponse::Text("partial");
  safety.finish = "safety";
  server_->Enqueue(safety);
  r = router_->Complete(testing::UserRequest("gemini", "y"), {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->finish_reason, "safety");
  EXPECT_EQ(r->text, "");
  EXPECT_EQ(server_->request_count(), 2);
}

TEST_F(ProvidersTest, GeminiRejectsModelIdsThatWouldChangeThePath) {
  absl::StatusOr<LlmResponse> r = router_->Complete(FullRequest("gemini", "../../v1/x?key=1"), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(GetErrorKind(r.status()), ErrorKind::kInvalidRequest);
  EXPECT_EQ(server_->request_count(), 0);
}

TEST_F(ProvidersTest, OpenAiRequestAndResponseShape) {
  FakeResponse answer = FakeResponse::Text("4");
  answer.input_tokens = 12;
  answer.output_tokens = 1;
  answer.headers = {{"x-request-id", "oai-req-1"}};
  server_->Enqueue(answer);
  LlmRequest request = FullRequest("openai", "");
  request.json_response = true;
  absl::StatusOr<LlmResponse> r = router_->Complete(request, {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->text, "4");
  EXPECT_EQ(r->finish_reason, "stop");
  EXPECT_EQ(r->input_tokens, 12);
  EXPECT_EQ(r->output_tokens, 1);
  EXPECT_EQ(r->provider_request_id, "oai-req-1");
  EXPECT_EQ(r->model, "gpt-test");

  RecordedRequest req = server_->requests()[0];
  EXPECT_EQ(req.path, "/v1/chat/completions");
  EXPECT_EQ(req.Header("authorization"), "Bearer oai-key-for-shape-test");
  json body = req.Json();
  EXPECT_EQ(body["model"], "gpt-test");
  ASSERT_EQ(body["messages"].size(), 4u);
  EXPECT_EQ(body["messages"][0], json({{"role", "system"}, {"content", "You are terse."}}));
  EXPECT_EQ(body["messages"][3], json({{"role", "user"}, {"content", "What is 2+2?"}}));
  EXPECT_EQ(body["max_tokens"], 77);
  EXPECT_EQ(body["stop"], json::array({"END"}));
  EXPECT_EQ(body["response_format"], json({{"type", "json_object"}}));
}

TEST_F(ProvidersTest, OpenAiCompatibleServerWithoutKeyAndRefusal) {
  server_->Enqueue(FakeResponse::Status(
      200, R"({"id":"c1","choices":[{"index":0,"message":{"role":"assistant","content":null,
             "refusal":"I can't help with that."},"finish_reason":"stop"}],
             "usage":{"prompt_tokens":3,"completion_tokens":2}})"));
  absl::StatusOr<LlmResponse> r = router_->Complete(testing::UserRequest("local", "x"), {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->finish_reason, "safety");
  EXPECT_EQ(r->text, "");
  RecordedRequest req = server_->requests()[0];
  EXPECT_FALSE(req.HasHeader("authorization"));
  EXPECT_EQ(req.Json()["model"], "llama3");
  // A global (Claude) alias on a non-Anthropic instance means its default model.
  server_->Enqueue(FakeResponse::Text("ok"));
  r = router_->Complete(FullRequest("local", "haiku"), {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(server_->requests()[1].Json()["model"], "llama3");
}

TEST_F(ProvidersTest, ConnectionsAreReused) {
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<LlmResponse> r =
        router_->Complete(testing::UserRequest("openai", absl::StrCat("q", i)), {});
    ASSERT_TRUE(r.ok()) << r.status();
  }
  EXPECT_EQ(server_->connections_accepted(), 1);
  std::vector<RecordedRequest> requests = server_->requests();
  for (const RecordedRequest& r : requests) EXPECT_EQ(r.connection_id, requests[0].connection_id);
}

// With no retry left a malformed 2xx ends as provider_error, not as a retryable (provider
// outage) error; with retries it gets exactly one (llm_resilience_test).
TEST_F(ProvidersTest, MalformedSuccessBodyWithoutRetriesIsAProviderError) {
  server_->Enqueue(FakeResponse::Status(200, "{not json"));
  absl::StatusOr<LlmResponse> r = router_->Complete(testing::UserRequest("anthropic", "x"), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(server_->request_count(), 1);
  EXPECT_EQ(GetErrorKind(r.status()), ErrorKind::kProviderError);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("malformed response"));
}

TEST_F(ProvidersTest, InstanceWithoutKeyIsNotConfigured) {
  RouterSetup setup;
  setup.yaml = "providers: {}";
  auto router = MakeRouter(setup);
  ASSERT_NE(router, nullptr);
  EXPECT_FALSE(router->IsUsable("anthropic"));
  EXPECT_TRUE(router->IsUsable("simulated"));
  absl::StatusOr<LlmResponse> r = router->Complete(testing::UserRequest("anthropic", "x"), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(GetErrorKind(r.status()), ErrorKind::kNotConfigured);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("ANTHROPIC_API_KEY"));
  r = router->Complete(testing::UserRequest("nowhere", "x"), {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ProvidersTest, StepTypesAndAliases) {
  EXPECT_EQ(*router_->InstanceForStepType("claude_smart"), "anthropic");
  EXPECT_EQ(*router_->InstanceForStepType("gemini"), "gemini");
  EXPECT_EQ(router_->InstanceForStepType("shell").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*router_->ResolveModel("anthropic", "haiku"), "claude-haiku-4-5");
  EXPECT_EQ(*router_->ResolveModel("anthropic", "opus"), "claude-opus-4-5");
  EXPECT_EQ(*router_->ResolveModel("anthropic", ""), "claude-sonnet-4-5");
  EXPECT_EQ(*router_->ResolveModel("anthropic", "claude-3-x"), "claude-3-x");
  EXPECT_EQ(*router_->ResolveModel("local", "sonnet"), "llama3");

  RouterSetup setup;
  setup.yaml = absl::StrCat(R"(
providers:
  local: {kind: openai, base_url: ')",
                            server_->base_url(), R"(/v1', default_model: llama3,
          model_aliases: {opus: llama3-70b}}
step_types: {claude: local, claude_smart: local, gemini: local}
)");
  auto router = MakeRouter(setup);
  ASSERT_NE(router, nullptr);
  EXPECT_EQ(*router->InstanceForStepType("claude"), "local");
  EXPECT_EQ(*router->InstanceForStepType("claude_batch"), "anthropic");
  EXPECT_EQ(*router->ResolveModel("local", "opus"), "llama3-70b");
  LlmRequest r = testing::UserRequest(*router->InstanceForStepType("claude_smart"), "x");
  r.model = "opus";
  ASSERT_TRUE(router->Complete(r, {}).ok());
  EXPECT_EQ(server_->requests().back().Json()["model"], "llama3-70b");
}

}  // namespace
}  // namespace elexirion::llm
