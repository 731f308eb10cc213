// A scripted fake LLM provider for tests, benchmarks and demos: a small HTTP/1.1 server on
// 127.0.0.1 (port 0 = any free port) that speaks the three provider APIs
//   POST /v1/messages                          (Anthropic)
//   POST /v1beta/models/{model}:generateContent (Gemini)
//   POST {any prefix}/chat/completions          (OpenAI-compatible)
// and records every request. Each request is answered by the next scripted response in the
// queue (Enqueue), else by the handler (SetHandler; default: a success body with text
// "ok"). Responses can misbehave on purpose: latency, any status and headers, malformed or
// truncated bodies, chunked and huge chunked bodies, a stall mid-body, a pause mid-body
// that then completes, no response at all (kNoHeaders with stall 0 closes a kept-alive
// connection without answering), a connection reset.
//
// One thread per connection (keep-alive supported), so 64+ concurrent connections with
// sleeping handlers cost nothing but idle threads. Thread safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace elexirion::fakes {

enum class FakeApi { kAnthropic, kGemini, kOpenAi, kUnknown };

struct RecordedRequest {
  int64_t connection_id = 0;  // same id = same TCP connection (keep-alive reuse)
  std::string method;
  std::string path;                                          // without the query
  std::string query;                                         // after '?', empty if none
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  // The whole response was written (the client has it, even if the server stops now).
  bool answered = false;

  // The header's value or "" (name in lower case).
  std::string Header(const std::string& name) const;
  bool HasHeader(const std::string& name) const;
  FakeApi api() const;
  // The body as JSON (null when it is not JSON).
  nlohmann::json Json() const;
  // Text of the last user message in the API's request shape ("" if none).
  std::string LastUserText() const;
};

struct FakeResponse {
  enum class Mode {
    kNormal,         // status, headers, body with Content-Length
    kChunked,        // same body, Transfer-Encoding: chunked
    kNoHeaders,      // accept the request, send nothing for `stall`, then close
    kTruncatedBody,  // a Content-Length beyond the body, half the body, then close
    kStallMidBody,   // the same, but waits `stall` before closing
    kPauseMidBody,   // correct Content-Length; half the body, `stall` of silence, the rest
    kHugeChunked,    // `huge_bytes` of chunked data (stops early when the client aborts)
    kReset,          // close with RST before answering
  };
  Mode mode = Mode::kNormal;
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  // Exact body. Unset: a success body in the request's API shape with `text` and usage.
  std::optional<std::string> body;
  std::string text = "ok";
  int64_t input_tokens = 10;
  int64_t output_tokens = 5;
  std::string finish = "stop";  // stop | length | safety
  // Added to the server's default latency before anything is sent.
  absl::Duration latency = absl::ZeroDuration();
  absl::Duration stall = absl::Seconds(30);
  int64_t huge_bytes = 10 << 20;

  static FakeResponse Text(std::string text);
  // A status with the exact body (e.g. ErrorBody(...)) and optional headers.
  static FakeResponse Status(int status, std::string body = "{}",
                             std::vector<std::pair<std::string, std::string>> headers = {});
  static FakeResponse WithMode(Mode mode);
  // An API-shaped error that echoes the key the request carried (x-api-key, x-goog-api-key
  // or Authorization), as careless providers and proxies do: for secret-hygiene tests.
  static FakeResponse EchoKeyError(const RecordedRequest& request, int status = 401);
};

// Provider-shaped bodies.
std::string SuccessBody(FakeApi api, const std::string& text, int64_t input_tokens,
                        int64_t output_tokens, const std::string& finish = "stop");
// Anthropic {"type":"error","error":{type,message}}, OpenAI {"error":{message,type,code}},
// Gemini {"error":{code,message,status}}; `type` is the type / code / status respectively.
std::string ErrorBody(FakeApi api, int status, const std::string& type, const std::string& message);
// A Gemini 429 RESOURCE_EXHAUSTED body with RetryInfo.retryDelay (e.g. "2s").
std::string GeminiRetryDelayBody(const std::string& retry_delay);

class FakeProviderServer {
 public:
  using Handler = std::function<FakeResponse(const RecordedRequest&)>;

  struct Options {
    int port = 0;  // 0 = any free port
    // Latency of every response (plus FakeResponse::latency).
    absl::Duration latency = absl::ZeroDuration();
  };

  static absl::StatusOr<std::unique_ptr<FakeProviderServer>> Start(Options options);
  static absl::StatusOr<std::unique_ptr<FakeProviderServer>> Start() { return Start(Options{}); }
  ~FakeProviderServer();

  int port() const { return port_; }
  // "http://127.0.0.1:<port>"
  std::string base_url() const;

  void Enqueue(FakeResponse response);
  void SetHandler(Handler handler);
  void SetLatency(absl::Duration latency);

  std::vector<RecordedRequest> requests() const;
  int request_count() const;
  // Highest number of requests being handled at the same time.
  int max_concurrent_requests() const;
  int connections_accepted() const;
  // Clears the queue, the request log and the counters (not the handler).
  void Reset();
  // Closes the listener and every connection, waking stalled responses. Idempotent.
  void Stop();

 private:
  explicit FakeProviderServer(Options options, int listen_fd, int port);
  void AcceptLoop();
  void Serve(int fd, int64_t connection_id);
  FakeResponse Next(const RecordedRequest& request);
  bool Respond(int fd, const RecordedRequest& request, const FakeResponse& response);
  bool Wait(absl::Duration d);  // false when stopping

  Options options_;
  const int listen_fd_;
  const int port_;
  absl::Notification stop_;
  std::thread accept_thread_;

  mutable absl::Mutex mu_;
  std::deque<FakeResponse> queue_ ABSL_GUARDED_BY(mu_);
  Handler handler_ ABSL_GUARDED_BY(mu_);
  absl::Duration latency_ ABSL_GUARDED_BY(mu_);
  std::vector<RecordedRequest> log_ ABSL_GUARDED_BY(mu_);
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  int max_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  int connections_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<int> open_fds_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace elexirion::fakes
