// Retries, retry hints, timeouts, size cap, cancellation, redirects, concurrency and rate
// limits, cooldown and fallback: the router against the fake provider over real HTTP.
// Backoff sleeps run on a FakeClock (instant and exactly measurable); transport timeouts
// are real and only bounded generously from above.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"
#include "server/llm/errors.h"
#include "server/metrics/registry.h"
#include "tests/fakes/fake_provider_server.h"
#include "tests/llm/llm_test_util.h"

namespace elexirion::llm {
namespace {

using ::elexirion::fakes::ErrorBody;
using ::elexirion::fakes::FakeApi;
using ::elexirion::fakes::FakeProviderServer;
using ::elexirion::fakes::FakeResponse;
using ::elexirion::fakes::GeminiRetryDelayBody;
using ::elexirion::llm::testing::MakeRouter;
using ::elexirion::llm::testing::RouterSetup;
using ::elexirion::llm::testing::UserRequest;
using ::testing::HasSubstr;
using Mode = FakeResponse::Mode;

const std::map<std::string, std::string> kKeys = {{"ANTHROPIC_API_KEY", "ant-test-key"},
                                                  {"GEMINI_API_KEY", "gem-test-key"},
                                                  {"OPENAI_KEY", "oai-test-key"}};

class ResilienceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = FakeProviderServer::Start();
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
  }

  // Instances a (anthropic), g (gemini), o (openai) on the fake server; `extra` is appended
  // to each instance's settings.
  std::unique_ptr<ProviderRouter> Router(const std::string& extra, Clock* clock = nullptr,
                                         const std::string& more_yaml = "") {
    const std::string base = server_->base_url();
    RouterSetup setup;
    setup.yaml = absl::StrCat(
        "providers:\n", "  a: {kind: anthropic, base_url: '", base, "', retry_base_delay: 100ms, ",
        extra, "}\n", "  g: {kind: gemini, base_url: '", base, "', retry_base_delay: 100ms, ",
        extra, "}\n", "  o: {kind: openai, base_url: '", base, "/v1', api_key_env: OPENAI_KEY, ",
        "retry_base_delay: 100ms, ", extra, "}\n", more_yaml);
    setup.env = kKeys;
    setup.clock = clock;
    return MakeRouter(setup);
  }

  std::unique_ptr<FakeProviderServer> server_;
};

TEST_F(ResilienceTest, RetryTableHitsPerStatus) {
  FakeClock clock;
  auto router = Router("max_retries: 3, cooldown_after_failures: 0", &clock);
  ASSERT_NE(router, nullptr);
  struct Case {
    int status;
    int hits;
    ErrorKind kind;
  };
  const Case cases[] = {
      {408, 4, ErrorKind::kRetryable},      {409, 4, ErrorKind::kRetryable},
      {429, 4, ErrorKind::kRetryable},      {500, 4, ErrorKind::kRetryable},
      {502, 4, ErrorKind::kRetryable},      {503, 4, ErrorKind::kRetryable},
      {504, 4, ErrorKind::kRetryable},      {529, 4, ErrorKind::kRetryable},
      {400, 1, ErrorKind::kInvalidRequest}, {401, 1, ErrorKind::kAuth},
      {403, 1, ErrorKind::kAuth},           {404, 1, ErrorKind::kInvalidRequest},
      {413, 1, ErrorKind::kInvalidRequest}, {422, 1, ErrorKind::kInvalidRequest},
  };
  for (const Case& c : cases) {
    server_->Reset();
    server_->SetHandler([&c](const fakes::RecordedRequest&) {
      return FakeResponse::Status(
          c.status, ErrorBody(FakeApi::kAnthropic, c.status, "some_error", "failure"));
    });
    absl::StatusOr<LlmResponse> r = router->Complete(UserRequest("a", "x"), {});
    ASSERT_FALSE(r.ok()) << c.status;
    EXPECT_EQ(server_->request_count(), c.hits) << "HTTP " << c.status;
    EXPECT_EQ(GetErrorKind(r.status()), c.kind) << "HTTP " << c.status << ": " << r.status();
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(absl::StrCat("HTTP ", c.status)));
  }
  EXPECT_EQ(GetErrorKind(absl::Status(absl::StatusCode::kInternal, "")), ErrorKind::kNone);
}

TEST_F(ResilienceTest, QuotaAndSpendLimitAreNeverRetried) {
  FakeClock clock;
  auto router = Router("max_retries: 3", &clock);
  ASSERT_NE(router, nullptr);
  server_->SetHandler([](const fakes::RecordedRequest&) {
    return FakeResponse::Status(
        429, ErrorBody(FakeApi::kOpenAi, 429, "insufficient_quota", "You exceeded your quota"));
  });
  absl::StatusOr<LlmResponse> r = router->Complete(UserRequest("o", "x"), {});
  EXPECT_EQ(server_->request_count(), 1);
  EXPECT_EQ(GetErrorKind(r.status()), ErrorKind::kQuota);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);

  server_->Reset();
  server_->SetHandler([](const fakes::RecordedRequest&) {
    return FakeResponse::Status(
        429, R"({"type":"error","error":{"type":"rate_limit_error","message":"spend limit",
                 "details":{"error_code":"enforced_spend_limit_reached"}}})");
  });
  r = router->Complete(UserRequest("a", "x"), {});
  EXPECT_EQ(server_->request_count(), 1);
  EXPECT_EQ(GetErrorKind(r.status()), ErrorKind::kQuota);
}

TEST_F(ResilienceTest, TransientFailuresThenSuccess) {
  FakeClock clock;
  auto router = Router("max_retries: 5, cooldown_after_failures: 0", &clock);
  ASSERT_NE(router, nullptr);
  server_->Enqueue(FakeResponse::WithMode(Mode::kReset));
  server_->Enqueue(FakeResponse::WithMode(Mode::kTruncatedBody));
  server_->Enqueue(FakeResponse::Status(200, "{\"choices\": [tru"));
  server_->Enqueue(FakeResponse::Status(
      529, ErrorBody(FakeApi::kAnthropic, 529, "overloaded_error", "Overloaded")));
  server_->Enqueue(FakeResponse::Text("finally"));
  const absl::Time start = clock.Now();
  absl::StatusOr<LlmResponse> r = router->Complete(UserRequest("o", "x"), {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->text, "finally");
  EXPECT_EQ(server_->request_count(), 5);
  // Full jitter: each wait is within [0, min(30 s, 100 ms * 2^n)].
  EXPECT_LE(clock.Now() - start, absl::Milliseconds(100 + 200 + 400 + 800));
  const std::string metrics_text =
      prometheus::TextSerializer().Serialize(metrics::DefaultRegistry()->Collect());
  EXPECT_THAT(metrics_text,
              HasSubstr("elexirion_llm_retries_total{provider=\"o\",reason=\"status_529\"} 1"));
  EXPECT_THAT(metrics_text,
              HasSubstr("elexirion_llm_retries_total{provider=\"o\",reason=\"transport\"}"));
}

TEST_F(ResilienceTest, RetryAfterMsIsHonoured) {
  FakeClock clock;
  auto router = Router("max_retries: 2", &clock);
  ASSERT_NE(router, nullptr);
  server_->Enqueue(FakeResponse::Status(
      429, ErrorBody(FakeApi::kOpenAi, 429, "rate_limit_exceeded", "slow down"),
      {{"retry-after-ms", "1500"}, {"retry-after", "9"}}));
  server_->Enqueue(FakeResponse::Text("ok"));
  const absl::Time start = clock.Now();
  ASSERT_TRUE(router->Complete(UserRequest("o", "x"), {}).ok());
  EXPECT_EQ(clock.Now() - start, absl::Milliseconds(1500));  // ms header wins over seconds
  EXPECT_EQ(server_->request_count(), 2);
}

TEST_F(ResilienceTest, RetryAfterSecondsAndHttpDate) {
  FakeClock clock;
  auto router = Router("max_retries: 2", &clock);
  ASSERT_NE(router, nullptr);
  server_->Enqueue(FakeResponse::Status(503, "{}", {{"retry-after", "2"}}));
  server_->Enqueue(FakeResponse::Text("ok"));
  absl::Time start = clock.Now();
  ASSERT_TRUE(router->Complete(UserRequest("a", "x"), {}).ok());
  EXPECT_EQ(clock.Now() - start, absl::Seconds(2));

  const std::string date = absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT",
                                            absl::Now() + absl::Seconds(5), absl::UTCTimeZone());
  server_->Enqueue(FakeResponse::Status(503, "{}", {{"retry-after", date}}));
  server_->Enqueue(FakeResponse::Text("ok"));
  start = clock.Now();
  ASSERT_TRUE(router->Complete(UserRequest("a", "y"), {}).ok());
  EXPECT_GE(clock.Now() - start, absl::Seconds(3));
  EXPECT_LE(clock.Now() - start, absl::Seconds(5));
}

TEST_F(ResilienceTest, GeminiRetryDelayIsHonoured) {
  FakeClock clock;
  auto router = Router("max_retries: 2", &clock);
  ASSERT_NE(router, nullptr);
  server_->Enqueue(FakeResponse::Status(429, GeminiRetryDelayBody("2s")));
  server_->Enqueue(FakeResponse::Text("ok"));
  const absl::Time start = clock.Now();
  absl::StatusOr<LlmResponse> r = router->Complete(UserRequest("g", "x"), {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(clock.Now() - start, absl::Seconds(2));
  EXPECT_EQ(server_->request_count(), 2);
}

TEST_F(ResilienceTest, LongHintFailsWithRateLimitedUntil) {
  FakeClock clock;
  auto router = Router("max_retries: 3, max_retry_after: 60s", &clock);
  ASSERT_NE(router, nullptr);
  server_->Enqueue(FakeResponse::Status(429, "{}", {{"retry-after", "3600"}}));
  const absl::Time start = clock.Now();
  absl::StatusOr<LlmResponse> r = router->Complete(UserRequest("a", "x"), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(server_->request_count(), 1);
  EXPECT_EQ(GetErrorKind(r.status()), ErrorKind::kRateLimited);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(RateLimitedUntil(r.status()).has_value());
  EXPECT_EQ(*RateLimitedUntil(r.status()), start + absl::Hours(1));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("rate limited until"));
  EXPECT_EQ(clock.Now(), start);  // no sleeping on a long hint

  // Gemini's per-day quota answers in hours.
  server_->Enqueue(FakeResponse::Status(429, GeminiRetryDelayBody("37000s")));
  r = router->Complete(UserRequest("g", "x"), {});
  EXPECT_EQ(GetErrorKind(r.status()), ErrorKind::kRateLimited);
  EXPECT_EQ(*RateLimitedUntil(r.status()), start + absl::Seconds(37000));
}

TEST_F(ResilienceTest, NoHeadersTimesOut) {
  auto router = Router("max_retries: 0, request_timeout: 1s");
  ASSERT_NE(router, nullptr);
  FakeResponse silent = FakeResponse::WithMode(Mode::kNoHeaders);
  silent.stall = absl::Seconds(20);
  server_->Enqueue(silent);
  const absl::Time start = absl::Now();
  absl::StatusOr<LlmResponse> r = router->Complete(UserRequest("a", "x"), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(GetErrorKind(r.status()), ErrorKind::kRetryable) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("imeout"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST_F(ResilienceTest, StallMidBodyIsAborted) {
  auto router = Router("max_retries: 0, request_timeout: 60s, low_speed_time: 1s");
  ASSERT_NE(router, nullptr);
  FakeResponse stall = FakeResponse::WithMode(Mode::kStallMidBody);
  stall.stall = absl::Seconds(30);
  server_->Enqueue(stall);
  const absl::Time start = absl::Now();
  absl::StatusOr<LlmResponse> r = router->Complete(UserRequest("a", "x"), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(GetErrorKind(r.status()), ErrorKind::kRetryable) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("stalled"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST_F(ResilienceTest, ClosedPortFailsFastAndIsRetryable) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  ::close(fd);  // nothing listens there now

  RouterSetup setup;
  setup.yaml = absl::StrCat("providers: {a: {kind: anthropic, base_url: 'http://127.0.0.1:", port,
                            "', max_retries: 2, retry_base_delay: 1ms}}");
  setup.env = kKeys;
  auto router = MakeRouter(setup);
  ASSERT_NE(router, nullptr);
  const absl::Time start = absl::Now();
  absl::StatusOr<LlmResponse> r = router->Complete(UserRequest("a", "x"), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(GetErrorKind(r.status()), ErrorKind::kRetryable) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("onnect"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST_F(ResilienceTest, SizeCapStopsAHugeChunkedBody) {
  auto router = Router("max_retries: 3, max_response_bytes: 1048576");
  ASSERT_NE(router, nullptr);
  FakeResponse huge = FakeResponse::WithMode(Mode::kHugeChunked);
  huge.huge_bytes = 64 << 20;
  server_->Enqueue(huge);
  absl::StatusOr<LlmResponse> r = router->Complete(UserRequest("a", "x"), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(GetErrorKind(r.status()), ErrorKind::kProviderError) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("exceeds the 1048576 byte cap"));
  EXPECT_EQ(server_->request_count(), 1);  // not retried

  // A Content-Length body over the cap too.
  server_->Enqueue(FakeResponse::Text(std::string(2 << 20, 'y')));
  r = router->Complete(UserRequest("a", "y"), {});
  EXPECT_EQ(GetErrorKind(r.status()), ErrorKind::kProviderError) << r.status();
}

TEST_F(ResilienceTest, CancellationAbortsAnInFlightCallWithinOneSecond) {
  auto router = Router("max_retries: 3");
  ASSERT_NE(router, nullptr);
  FakeResponse slow = FakeResponse::Text("late");
  slow.latency = absl::Seconds(30);
  server_->Enqueue(slow);
  CancellationToken token;
  CallOptions options;
  options.cancel = &token;
  std::atomic<bool> started{false};
  absl::StatusOr<LlmResponse> result;
  absl::Time returned;
  std::thread caller([&] {
    started = true;
    result = router->Complete(UserRequest("a", "x"), options);
    returned = absl::Now();
  });
  while (server_->request_count() == 0) absl::SleepFor(absl::Milliseconds(10));
  const absl::Time cancelled_at = absl::Now();
  token.Cancel("job cancelled");
  caller.join();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("job cancelled"));
  EXPECT_LT(returned - cancelled_at, absl::Seconds(1));
  EXPECT_EQ(server_->request_count(), 1);  // cancelled calls are not retried
}

TEST_F(ResilienceTest, CancellationInterruptsABackoffSleep) {
  auto router = Router("max_retries: 3, max_retry_after: 120s");
  ASSERT_NE(router, nullptr);
  server_->Enqueue(FakeResponse::Status(503, "{}", {{"retry-after", "60"}}));
  CancellationToken token;
  CallOptions options;
  options.cancel = &token;
  absl::StatusOr<LlmResponse> result;
  std::thread caller([&] { result = router->Complete(UserRequest("a", "x"), options); });
  while (server_->request_count() == 0) absl::SleepFor(absl::Milliseconds(10));
  absl::SleepFor(absl::Milliseconds(100));
  const absl::Time cancelled_at = absl::Now();
  token.Cancel();
  caller.join();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled);
  EXPECT_LT(absl::Now() - cancelled_at, absl::Seconds(1));
  EXPECT_EQ(server_->request_count(), 1);

  CancellationToken already;
  already.Cancel();
  options.cancel = &already;
  EXPECT_EQ(router->Complete(UserRequest("a", "y"), options).status().code(),
            absl::StatusCode::kCancelled);
  EXPECT_EQ(server_->request_count(), 1);
}

TEST_F(ResilienceTest, DeadlineEndsTheCall) {
  auto router = Router("max_retries: 3");
  ASSERT_NE(router, nullptr);
  FakeResponse slow = FakeResponse::Text("late");
  slow.latency = absl::Seconds(20);
  server_->Enqueue(slow);
  CallOptions options;
  options.deadline = absl::Now() + absl::Milliseconds(500);
  absl::StatusOr<LlmResponse> r = router->Complete(UserRequest("a", "x"), options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_EQ(GetErrorKind(r.status()), ErrorKind::kDeadline);
}

TEST_F(ResilienceTest, RedirectIsNotFollowed) {
  auto target = FakeProviderServer::Start();
  ASSERT_TRUE(target.ok());
  auto router = Router("max_retries: 3");
  ASSERT_NE(router, nullptr);
  server_->SetHandler([&](const fakes::RecordedRequest&) {
    return FakeResponse::Status(302, "", {{"Location", (*target)->base_url() + "/v1/messages"}});
  });
  absl::StatusOr<LlmResponse> r = router->Complete(UserRequest("a", "x"), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(GetErrorKind(r.status()), ErrorKind::kProviderError) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("redirect not followed"));
  EXPECT_EQ(server_->request_count(), 1);
  EXPECT_EQ((*target)->request_count(), 0);  // the key never went anywhere else
}

TEST_F(ResilienceTest, ConcurrencyLimitIsRespected) {
  auto router = Router("max_concurrency: 3");
  ASSERT_NE(router, nullptr);
  server_->SetLatency(absl::Milliseconds(100));
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 12; ++i) {
    threads.emplace_back([&, i] {
      if (router->Complete(UserRequest("o", absl::StrCat("q", i)), {}).ok()) ++ok;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ok.load(), 12);
  EXPECT_EQ(server_->request_count(), 12);
  EXPECT_LE(server_->max_concurrent_requests(), 3);
  EXPECT_GE(server_->max_concurrent_requests(), 1);
}

TEST_F(ResilienceTest, RequestsPerMinuteBucketWaits) {
  FakeClock clock;
  auto router = Router("requests_per_minute: 2", &clock);
  ASSERT_NE(router, nullptr);
  const absl::Time start = clock.Now();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(router->Complete(UserRequest("o", absl::StrCat("q", i)), {}).ok());
  }
  EXPECT_GE(clock.Now() - start, absl::Seconds(29));  // the third waited for a token
  EXPECT_LE(clock.Now() - start, absl::Seconds(31));
  EXPECT_EQ(server_->request_count(), 3);
}

TEST_F(ResilienceTest, CooldownAfterRepeatedFailures) {
  FakeClock clock;
  auto router = Router("max_retries: 1, cooldown_after_failures: 2, cooldown: 30s", &clock);
  ASSERT_NE(router, nullptr);
  server_->SetHandler(
      [](const fakes::RecordedRequest&) { return FakeResponse::Status(503, "{}"); });
  absl::StatusOr<LlmResponse> r = router->Complete(UserRequest("a", "x"), {});
  EXPECT_EQ(GetErrorKind(r.status()), ErrorKind::kRetryable);
  EXPECT_EQ(server_->request_count(), 2);
  r = router->Complete(UserRequest("a", "x"), {});
  EXPECT_EQ(GetErrorKind(r.status()), ErrorKind::kRetryable);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("cooling down"));
  EXPECT_EQ(server_->request_count(), 2);  // refused without calling
  EXPECT_THAT(prometheus::TextSerializer().Serialize(metrics::DefaultRegistry()->Collect()),
              HasSubstr("elexirion_llm_cooldowns_total{provider=\"a\"}"));
  clock.Advance(absl::Seconds(31));
  server_->SetHandler(nullptr);
  EXPECT_TRUE(router->Complete(UserRequest("a", "x"), {}).ok());
}

TEST_F(ResilienceTest, FallbackInstanceAnswersWhenThePrimaryFails) {
  FakeClock clock;
  auto router = Router("max_retries: 1", &clock,
                       "  f: {kind: anthropic, base_url: 'http://127.0.0.1:1', fallback: "
                       "simulated, max_retries: 0}\n");
  ASSERT_NE(router, nullptr);
  absl::StatusOr<LlmResponse> r = router->Complete(UserRequest("f", "What is 2 plus 3?"), {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->provider, "simulated");
  EXPECT_TRUE(r->simulated);
}

}  // namespace
}  // namespace elexirion::llm
