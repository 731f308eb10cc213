// ProviderOutageGate's pause logic against a scripted LlmClient (the seam's real use, a job
// against the fake provider over HTTP, is tests/app/provider_outage_test.cc).
#include "server/jobs/provider_outage.h"

#include <atomic>
#include <functional>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/llm/errors.h"

namespace elexirion::jobs {
namespace {

using ::testing::HasSubstr;

class ScriptedClient final : public llm::LlmClient {
 public:
  using Script = std::function<absl::StatusOr<llm::LlmResponse>(int call)>;
  explicit ScriptedClient(Script script) : script_(std::move(script)) {}
  absl::StatusOr<llm::LlmResponse> Complete(const llm::LlmRequest&,
                                            const llm::CallOptions&) override {
    return script_(calls_.fetch_add(1));
  }
  int calls() const { return calls_.load(); }

 private:
  Script script_;
  std::atomic<int> calls_{0};
};

llm::LlmResponse Ok() {
  llm::LlmResponse r;
  r.text = "ok";
  return r;
}

struct Observed {
  absl::Mutex mu;
  std::vector<ProviderOutageGate::Wait> waits ABSL_GUARDED_BY(mu);
  int resumes ABSL_GUARDED_BY(mu) = 0;
};

ProviderOutageGate::Options GateOptions(llm::LlmClient* client, Observed* seen) {
  ProviderOutageGate::Options o;
  o.client = client;
  o.max_outage = absl::Seconds(30);
  o.first_probe = absl::Milliseconds(10);
  o.max_probe_interval = absl::Milliseconds(40);
  o.on_wait = [seen](const ProviderOutageGate::Wait& w) {
    absl::MutexLock lock(&seen->mu);
    seen->waits.push_back(w);
  };
  o.on_resume = [seen](absl::Time, absl::Duration) {
    absl::MutexLock lock(&seen->mu);
    ++seen->resumes;
  };
  return o;
}

TEST(ProviderOutageGateTest, PausesProbesWithBackoffAndResumes) {
  ScriptedClient client([](int call) -> absl::StatusOr<llm::LlmResponse> {
    if (call < 4) return llm::RetryableError("a: connection refused");
    return Ok();
  });
  Observed seen;
  ProviderOutageGate gate(GateOptions(&client, &seen));
  absl::StatusOr<llm::LlmResponse> r = gate.Complete({}, {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(client.calls(), 5);
  EXPECT_FALSE(gate.failure().has_value());
  absl::MutexLock lock(&seen.mu);
  ASSERT_EQ(seen.waits.size(), 4u);  // the pause, then one per failed probe
  for (size_t i = 0; i < seen.waits.size(); ++i) {
    const ProviderOutageGate::Wait& w = seen.waits[i];
    EXPECT_EQ(w.probes, static_cast<int>(i));
    EXPECT_EQ(w.since, seen.waits[0].since);
    EXPECT_EQ(w.give_up_at, w.since + absl::Seconds(30));
    EXPECT_THAT(w.reason, HasSubstr("connection refused"));
  }
  // 10, 20, 40, then capped at 40 ms.
  EXPECT_GE(seen.waits[1].next_probe - seen.waits[1].since, absl::Milliseconds(30));
  EXPECT_GE(seen.waits[3].next_probe - seen.waits[2].next_probe, absl::Milliseconds(40));
  EXPECT_EQ(seen.resumes, 1);
}

TEST(ProviderOutageGateTest, PerExampleErrorsPassThroughWithoutPause) {
  ScriptedClient client([](int call) -> absl::StatusOr<llm::LlmResponse> {
    if (call == 0) return llm::InvalidRequestError("a: HTTP 400");
    if (call == 1) return llm::ProviderError("a: malformed response (HTTP 200)");
    return llm::QuotaError("a: insufficient_quota");
  });
  Observed seen;
  ProviderOutageGate gate(GateOptions(&client, &seen));
  EXPECT_EQ(llm::GetErrorKind(gate.Complete({}, {}).status()), llm::ErrorKind::kInvalidRequest);
  EXPECT_EQ(llm::GetErrorKind(gate.Complete({}, {}).status()), llm::ErrorKind::kProviderError);
  EXPECT_EQ(llm::GetErrorKind(gate.Complete({}, {}).status()), llm::ErrorKind::kQuota);
  EXPECT_EQ(client.calls(), 3);
  absl::MutexLock lock(&seen.mu);
  EXPECT_TRUE(seen.waits.empty());
}

TEST(ProviderOutageGateTest, GivesUpAfterMaxOutage) {
  ScriptedClient client(
      [](int) -> absl::StatusOr<llm::LlmResponse> { return llm::RetryableError("a: HTTP 503"); });
  Observed seen;
  ProviderOutageGate::Options o = GateOptions(&client, &seen);
  o.max_outage = absl::Milliseconds(150);
  ProviderOutageGate gate(o);
  absl::StatusOr<llm::LlmResponse> r = gate.Complete({}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled) << "the optimizer must stop";
  ASSERT_TRUE(gate.failure().has_value());
  EXPECT_THAT(std::string(gate.failure()->message()), HasSubstr("jobs.max_provider_outage"));
  EXPECT_THAT(std::string(gate.failure()->message()), HasSubstr("HTTP 503"));
  // Later calls are refused at once, without reaching the provider.
  const int calls = client.calls();
  EXPECT_EQ(gate.Complete({}, {}).status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(client.calls(), calls);
}

TEST(ProviderOutageGateTest, RateLimitedUntilDelaysTheProbe) {
  // Whole microseconds: the error payload keeps no finer resolution.
  const absl::Time until =
      absl::FromUnixMicros(absl::ToUnixMicros(absl::Now() + absl::Milliseconds(300)));
  ScriptedClient client([until](int call) -> absl::StatusOr<llm::LlmResponse> {
    if (call == 0) return llm::RateLimitedUntilError(until, "a: rate limited");
    return Ok();
  });
  Observed seen;
  ProviderOutageGate gate(GateOptions(&client, &seen));
  ASSERT_TRUE(gate.Complete({}, {}).ok());
  EXPECT_GE(absl::Now(), until);
  absl::MutexLock lock(&seen.mu);
  ASSERT_EQ(seen.waits.size(), 1u);
  EXPECT_EQ(seen.waits[0].next_probe, until);
}

// While paused, other calls wait without calling the provider; one probes; cancellation
// and deadlines end a waiting call.
TEST(ProviderOutageGateTest, OtherCallsWaitAndCancellationEndsTheWait) {
  std::atomic<bool> back{false};
  ScriptedClient client([&back](int) -> absl::StatusOr<llm::LlmResponse> {
    if (!back.load()) return llm::RetryableError("a: cooling down", absl::Milliseconds(20));
    return Ok();
  });
  Observed seen;
  ProviderOutageGate gate(GateOptions(&client, &seen));
  std::thread prober([&] { EXPECT_TRUE(gate.Complete({}, {}).ok()); });
  while (true) {
    absl::MutexLock lock(&seen.mu);
    if (!seen.waits.empty()) break;
  }
  CancellationToken cancel;
  llm::CallOptions cancellable;
  cancellable.cancel = &cancel;
  std::thread waiter([&] {
    EXPECT_EQ(gate.Complete({}, cancellable).status().code(), absl::StatusCode::kCancelled);
  });
  llm::CallOptions short_deadline;
  short_deadline.deadline = absl::Now() + absl::Milliseconds(100);
  EXPECT_EQ(gate.Complete({}, short_deadline).status().code(), absl::StatusCode::kDeadlineExceeded);
  cancel.Cancel("user");
  waiter.join();
  back.store(true);
  prober.join();
  EXPECT_TRUE(gate.Complete({}, {}).ok());
  absl::MutexLock lock(&seen.mu);
  EXPECT_EQ(seen.resumes, 1);
}

}  // namespace
}  // namespace elexirion::jobs
