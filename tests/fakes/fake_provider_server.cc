#include "tests/fakes/fake_provider_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace elexirion::fakes {

using json = nlohmann::json;

namespace {

constexpr int64_t kMaxRequestBytes = 64 << 20;

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 302:
      return "Found";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 529:
      return "Overloaded";
    default:
      return "Status";
  }
}

bool SendAll(int fd, const char* data, size_t len) {
  while (len > 0) {
    ssize_t n = ::send(fd, data, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

bool SendAll(int fd, const std::string& s) { return SendAll(fd, s.data(), s.size()); }

std::string GeminiFinish(const std::string& finish) {
  if (finish == "length") return "MAX_TOKENS";
  if (finish == "safety") return "SAFETY";
  return "STOP";
}

}  // namespace

std::string RecordedRequest::Header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return "";
}

bool RecordedRequest::HasHeader(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return true;
  }
  return false;
}

FakeApi RecordedRequest::api() const {
  if (absl::EndsWith(path, "/v1/messages")) return FakeApi::kAnthropic;
  if (absl::EndsWith(path, ":generateContent")) return FakeApi::kGemini;
  if (absl::EndsWith(path, "/chat/completions")) return FakeApi::kOpenAi;
  return FakeApi::kUnknown;
}

json RecordedRequest::Json() const {
  json j = json::parse(body, nullptr, false);
  return j.is_discarded() ? json() : j;
}

std::string RecordedRequest::LastUserText() const {
  json j = Json();
  if (!j.is_object()) return "";
  if (api() == FakeApi::kGemini) {
    if (!j.contains("contents") || !j["contents"].is_array()) return "";
    for (auto it = j["contents"].rbegin(); it != j["contents"].rend(); ++it) {
      if (it->value("role", "") == "user" && it->contains("parts") && (*it)["parts"].is_array() &&
          !(*it)["parts"].empty()) {
        return (*it)["parts"][0].value("text", "");
      }
    }
    return "";
  }
  if (!j.contains("messages") || !j["messages"].is_array()) return "";
  for (auto it = j["messages"].rbegin(); it != j["messages"].rend(); ++it) {
    if (it->value("role", "") == "user" && (*it)["content"].is_string()) {
      return (*it)["content"].get<std::string>();
    }
  }
  return "";
}

FakeResponse FakeResponse::Text(std::string text) {
  FakeResponse r;
  r.text = std::move(text);
  return r;
}

FakeResponse FakeResponse::Status(int status, std::string body,
                                  std::vector<std::pair<std::string, std::string>> headers) {
  FakeResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

FakeResponse FakeResponse::WithMode(Mode mode) {
  FakeResponse r;
  r.mode = mode;
  return r;
}

FakeResponse FakeResponse::EchoKeyError(const RecordedRequest& request, int status) {
  const std::string key = request.Header("x-api-key") + request.Header("x-goog-api-key") +
                          request.Header("authorization");
  return Status(status, ErrorBody(request.api(), status, "authentication_error",
                                  "invalid API key: " + key));
}

std::string SuccessBody(FakeApi api, const std::string& text, int64_t in, int64_t out,
                        const std::string& finish) {
  json j;
  switch (api) {
    case FakeApi::kAnthropic:
      j = {{"id", "msg_fake"},
           {"type", "message"},
           {"role", "assistant"},
           {"model", "fake"},
           {"content", json::array({{{"type", "text"}, {"text", text}}})},
           {"stop_reason", finish == "length"   ? "max_tokens"
                           : finish == "safety" ? "refusal"
                                                : "end_turn"},
           {"stop_sequence", nullptr},
           {"usage", {{"input_tokens", in}, {"output_tokens", out}}}};
      break;
    case FakeApi::kGemini:
      j = {{"candidates",
            json::array(
                {{{"content", {{"role", "model"}, {"parts", json::array({{{"text", text}}})}}},
                  {"finishReason", GeminiFinish(finish)},
                  {"index", 0}}})},
           {"usageMetadata",
            {{"promptTokenCount", in},
             {"candidatesTokenCount", out},
             {"totalTokenCount", in + out}}},
           {"modelVersion", "fake"},
           {"responseId", "resp_fake"}};
      break;
    case FakeApi::kOpenAi:
    case FakeApi::kUnknown:
      j = {{"id", "chatcmpl_fake"},
           {"object", "chat.completion"},
           {"created", 1700000000},
           {"model", "fake"},
           {"choices",
            json::array({{{"index", 0},
                          {"message", {{"role", "assistant"}, {"content", text}}},
                          {"finish_reason", finish == "safety" ? "content_filter" : finish}}})},
           {"usage",
            {{"prompt_tokens", in}, {"completion_tokens", out}, {"total_tokens", in + out}}}};
      break;
  }
  return j.dump();
}

std::string ErrorBody(FakeApi api, int status, const std::string& type,
                      const std::string& message) {
  json j;
  switch (api) {
    case FakeApi::kAnthropic:
      j = {{"type", "error"},
           {"error", {{"type", type}, {"message", message}}},
           {"request_id", "req_fake"}};
      break;
    case FakeApi::kGemini:
      j = {{"error", {{"code", status}, {"message", message}, {"status", type}}}};
      break;
    case FakeApi::kOpenAi:
    case FakeApi::kUnknown:
      j = {{"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", type}}}};
      break;
  }
  return j.dump();
}

std::string GeminiRetryDelayBody(const std::string& retry_delay) {
  json j = {{"error",
             {{"code", 429},
              {"message", "Resource has been exhausted (e.g. check quota)."},
              {"status", "RESOURCE_EXHAUSTED"},
              {"details", json::array({{{"@type", "type.googleapis.com/google.rpc.RetryInfo"},
                                        {"retryDelay", retry_delay}}})}}}};
  return j.dump();
}

absl::StatusOr<std::unique_ptr<FakeProviderServer>> FakeProviderServer::Start(Options options) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(options.port));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(fd, 1024) != 0) {
    int err = errno;
    ::close(fd);
    return absl::InternalError(absl::StrCat("bind/listen: ", std::strerror(err)));
  }
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return std::unique_ptr<FakeProviderServer>(
      new FakeProviderServer(options, fd, ntohs(addr.sin_port)));
}

FakeProviderServer::FakeProviderServer(Options options, int listen_fd, int port)
    : options_(options), listen_fd_(listen_fd), port_(port), latency_(options.latency) {
  accept_thread_ = std::thread([this] { AcceptLoop(); });
}

FakeProviderServer::~FakeProviderServer() { Stop(); }

std::string FakeProviderServer::base_url() const {
  return absl::StrCat("http://127.0.0.1:", port_);
}

void FakeProviderServer::Enqueue(FakeResponse response) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(response));
}

void FakeProviderServer::SetHandler(Handler handler) {
  absl::MutexLock lock(&mu_);
  handler_ = std::move(handler);
}

void FakeProviderServer::SetLatency(absl::Duration latency) {
  absl::MutexLock lock(&mu_);
  latency_ = latency;
}

std::vector<RecordedRequest> FakeProviderServer::requests() const {
  absl::MutexLock lock(&mu_);
  return log_;
}

int FakeProviderServer::request_count() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(log_.size());
}

int FakeProviderServer::max_concurrent_requests() const {
  absl::MutexLock lock(&mu_);
  return max_in_flight_;
}

int FakeProviderServer::connections_accepted() const {
  absl::MutexLock lock(&mu_);
  return connections_;
}

void FakeProviderServer::Reset() {
  absl::MutexLock lock(&mu_);
  queue_.clear();
  log_.clear();
  max_in_flight_ = in_flight_;
  connections_ = 0;
}

void FakeProviderServer::Stop() {
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
    if (!stop_.HasBeenNotified()) stop_.Notify();
  }
  accept_thread_.join();
  {
    absl::MutexLock lock(&mu_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    threads.swap(threads_);
  }
  for (std::thread& t : threads) t.join();
  ::close(listen_fd_);
}

bool FakeProviderServer::Wait(absl::Duration d) {
  if (d <= absl::ZeroDuration()) return !stop_.HasBeenNotified();
  return !stop_.WaitForNotificationWithTimeout(d);
}

void FakeProviderServer::AcceptLoop() {
  int64_t next_id = 1;
  while (!stop_.HasBeenNotified()) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    absl::MutexLock lock(&mu_);
    if (stopped_) {
      ::close(fd);
      break;
    }
    ++connections_;
    open_fds_.push_back(fd);
    int64_t id = next_id++;
    threads_.emplace_back([this, fd, id] { Serve(fd, id); });
  }
}

FakeResponse FakeProviderServer::Next(const RecordedRequest& request) {
  Handler handler;
  {
    absl::MutexLock lock(&mu_);
    if (!queue_.empty()) {
      FakeResponse r = std::move(queue_.front());
      queue_.pop_front();
      return r;
    }
    handler = handler_;
  }
  if (handler) return handler(request);
  return FakeResponse::Text("ok");
}

void FakeProviderServer::Serve(int fd, int64_t connection_id) {
  std::string buffer;
  bool keep_alive = true;
  while (keep_alive && !stop_.HasBeenNotified()) {
    // Read the head.
    size_t head_end;
    bool closed = false;
    while ((head_end = buffer.find("\r\n\r\n")) == std::string::npos) {
      pollfd p{fd, POLLIN, 0};
      int pr = ::poll(&p, 1, 100);
      if (stop_.HasBeenNotified()) {
        closed = true;
        break;
      }
      if (pr <= 0) continue;
      char chunk[16384];
      ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
      if (n <= 0) {
        closed = true;
        break;
      }
      buffer.append(chunk, static_cast<size_t>(n));
      if (buffer.size() > 1 << 20) {
        closed = true;
        break;
      }
    }
    if (closed) break;
    RecordedRequest req;
    req.connection_id = connection_id;
    std::string head = buffer.substr(0, head_end);
    buffer.erase(0, head_end + 4);
    std::vector<std::string> lines = absl::StrSplit(head, "\r\n");
    std::vector<std::string> first = absl::StrSplit(lines[0], ' ');
    if (first.size() < 3) break;
    req.method = first[0];
    std::string target = first[1];
    size_t q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string::npos) req.query = target.substr(q + 1);
    const bool http10 = first[2] == "HTTP/1.0";
    int64_t content_length = 0;
    bool expect_continue = false;
    for (size_t i = 1; i < lines.size(); ++i) {
      size_t colon = lines[i].find(':');
      if (colon == std::string::npos) continue;
      std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
      std::string value(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
      if (name == "content-length") absl::SimpleAtoi(value, &content_length);
      if (name == "expect" && absl::EqualsIgnoreCase(value, "100-continue")) expect_continue = true;
      if (name == "connection" && absl::EqualsIgnoreCase(value, "close")) keep_alive = false;
      req.headers.emplace_back(std::move(name), std::move(value));
    }
    if (http10) keep_alive = false;
    if (content_length < 0 || content_length > kMaxRequestBytes) break;
    if (expect_continue && !SendAll(fd, "HTTP/1.1 100 Continue\r\n\r\n")) break;
    while (static_cast<int64_t>(buffer.size()) < content_length) {
      pollfd p{fd, POLLIN, 0};
      int pr = ::poll(&p, 1, 100);
      if (stop_.HasBeenNotified()) {
        closed = true;
        break;
      }
      if (pr <= 0) continue;
      char chunk[65536];
      ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
      if (n <= 0) {
        closed = true;
        break;
      }
      buffer.append(chunk, static_cast<size_t>(n));
    }
    if (closed) break;
    req.body = buffer.substr(0, static_cast<size_t>(content_length));
    buffer.erase(0, static_cast<size_t>(content_length));

    size_t index;
    {
      absl::MutexLock lock(&mu_);
      index = log_.size();
      log_.push_back(req);
      ++in_flight_;
      max_in_flight_ = std::max(max_in_flight_, in_flight_);
    }
    FakeResponse response = Next(req);
    bool ok = Respond(fd, req, response);
    {
      absl::MutexLock lock(&mu_);
      --in_flight_;
      // (Reset() may have cleared the log meanwhile.)
      if (ok && index < log_.size() && log_[index].connection_id == connection_id) {
        log_[index].answered = true;
      }
    }
    if (!ok) break;
  }
  {
    absl::MutexLock lock(&mu_);
    open_fds_.erase(std::remove(open_fds_.begin(), open_fds_.end(), fd), open_fds_.end());
  }
  ::close(fd);
}

// False when the connection must be closed afterwards.
bool FakeProviderServer::Respond(int fd, const RecordedRequest& req, const FakeResponse& r) {
  absl::Duration latency;
  {
    absl::MutexLock lock(&mu_);
    latency = latency_;
  }
  if (!Wait(latency + r.latency)) return false;
  using Mode = FakeResponse::Mode;
  if (r.mode == Mode::kReset) {
    linger l{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    return false;
  }
  if (r.mode == Mode::kNoHeaders) {
    Wait(r.stall);
    return false;
  }
  const std::string body = r.body.has_value() ? *r.body
                                              : SuccessBody(req.api(), r.text, r.input_tokens,
                                                            r.output_tokens, r.finish);
  std::string head = absl::StrFormat("HTTP/1.1 %d %s\r\n", r.status, Reason(r.status));
  bool has_content_type = false;
  for (const auto& [k, v] : r.headers) {
    absl::StrAppend(&head, k, ": ", v, "\r\n");
    if (absl::EqualsIgnoreCase(k, "content-type")) has_content_type = true;
  }
  if (!has_content_type) absl::StrAppend(&head, "Content-Type: application/json\r\n");

  switch (r.mode) {
    case Mode::kNormal:
      absl::StrAppend(&head, "Content-Length: ", body.size(), "\r\n\r\n");
      return SendAll(fd, head + body);
    case Mode::kChunked: {
      absl::StrAppend(&head, "Transfer-Encoding: chunked\r\n\r\n");
      if (!SendAll(fd, head)) return false;
      for (size_t off = 0; off < body.size(); off += 1024) {
        std::string part = body.substr(off, 1024);
        if (!SendAll(fd, absl::StrFormat("%x\r\n%s\r\n", part.size(), part))) return false;
      }
      return SendAll(fd, "0\r\n\r\n");
    }
    case Mode::kTruncatedBody:
    case Mode::kStallMidBody: {
      absl::StrAppend(&head, "Content-Length: ", body.size() + 100, "\r\n\r\n");
      if (!SendAll(fd, head + body.substr(0, body.size() / 2))) return false;
      if (r.mode == Mode::kStallMidBody) Wait(r.stall);
      return false;
    }
    case Mode::kPauseMidBody: {
      absl::StrAppend(&head, "Content-Length: ", body.size(), "\r\n\r\n");
      const size_t half = body.size() / 2;
      if (!SendAll(fd, head + body.substr(0, half))) return false;
      if (!Wait(r.stall)) return false;
      return SendAll(fd, body.substr(half));
    }
    case Mode::kHugeChunked: {
      absl::StrAppend(&head, "Transfer-Encoding: chunked\r\n\r\n");
      if (!SendAll(fd, head)) return false;
      const std::string chunk(64 * 1024, 'x');
      const std::string framed = absl::StrFormat("%x\r\n%s\r\n", chunk.size(), chunk);
      for (int64_t sent = 0; sent < r.huge_bytes; sent += static_cast<int64_t>(chunk.size())) {
        if (stop_.HasBeenNotified() || !SendAll(fd, framed)) return false;
      }
      return SendAll(fd, "0\r\n\r\n");
    }
    default:
      return false;
  }
}

}  // namespace elexirion::fakes
