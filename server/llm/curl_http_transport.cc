#include "server/llm/curl_http_transport.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "server/llm/errors.h"

namespace elexirion::llm {

std::optional<std::string> HttpResponse::Header(absl::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (absl::EqualsIgnoreCase(k, name)) return v;
  }
  return std::nullopt;
}

// One transfer; lives on the stack of the Send() caller, which blocks until `done`.
// Everything but `done` is touched only by the loop thread once the transfer is queued.
struct CurlHttpTransport::Transfer {
  const HttpRequest* request = nullptr;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  HttpResponse response;
  absl::Status status;
  bool too_large = false;
  // Requests curl started for this transfer (CURLOPT_PREREQFUNCTION). More than one means
  // curl is silently re-sending on a fresh connection; we refuse and retry ourselves.
  int requests_started = 0;
  bool resend_refused = false;
  // Stall window: byte arrivals (coalesced per kArrivalBucket) of the last low_speed_time.
  bool got_first_byte = false;
  absl::Time first_byte;
  std::deque<std::pair<absl::Time, int64_t>> arrivals;
  char errbuf[CURL_ERROR_SIZE] = {0};
  absl::Notification done;
};

namespace {

constexpr int kMaxPollMs = 100;  // bounds how late a cancellation or stall is noticed
// Arrivals closer than this to the previous one share its entry in the stall window
// (bounds its memory).
constexpr absl::Duration kArrivalBucket = absl::Milliseconds(10);

void NoteBytes(CurlHttpTransport::Transfer* t, size_t len) {
  const absl::Time now = absl::Now();
  if (!t->got_first_byte) {
    t->got_first_byte = true;
    t->first_byte = now;
  }
  if (!t->arrivals.empty() && now - t->arrivals.back().first < kArrivalBucket) {
    // A burst counts at its last arrival, so the window can only err late, never early.
    t->arrivals.back().first = now;
    t->arrivals.back().second += static_cast<int64_t>(len);
  } else {
    t->arrivals.emplace_back(now, static_cast<int64_t>(len));
  }
}

// Sliding stall window: true when, at least low_speed_time after the first byte, fewer
// than low_speed_limit * low_speed_time bytes arrived during the last low_speed_time. (A
// window restarted every low_speed_time, like curl's own check, misses a stall that
// straddles two windows: up to 2x low_speed_time of silence went unnoticed.)
bool Stalled(CurlHttpTransport::Transfer* t, absl::Time now) {
  const HttpRequest& r = *t->request;
  if (!t->got_first_byte || now - t->first_byte < r.low_speed_time) return false;
  const absl::Time window_start = now - r.low_speed_time;
  while (!t->arrivals.empty() && t->arrivals.front().first <= window_start) {
    t->arrivals.pop_front();
  }
  int64_t bytes = 0;
  for (const auto& [when, n] : t->arrivals) bytes += n;
  return static_cast<double>(bytes) <
         static_cast<double>(r.low_speed_limit) * absl::ToDoubleSeconds(r.low_speed_time);
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<CurlHttpTransport::Transfer*>(user);
  size_t len = size * n;
  absl::string_view line(data, len);
  line = absl::StripTrailingAsciiWhitespace(line);
  NoteBytes(t, len);
  if (absl::StartsWith(line, "HTTP/")) {
    // A new status line (e.g. after "100 Continue"): only the last response's headers count.
    t->response.headers.clear();
    return len;
  }
  size_t colon = line.find(':');
  if (colon == absl::string_view::npos) return len;
  std::string name = absl::AsciiStrToLower(line.substr(0, colon));
  std::string value(absl::StripAsciiWhitespace(line.substr(colon + 1)));
  t->response.headers.emplace_back(std::move(name), std::move(value));
  return len;
}

size_t OnWrite(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<CurlHttpTransport::Transfer*>(user);
  size_t len = size * n;
  if (static_cast<int64_t>(t->response.body.size() + len) > t->request->max_response_bytes) {
    t->too_large = true;
    return 0;  // curl aborts with CURLE_WRITE_ERROR
  }
  t->response.body.append(data, len);
  NoteBytes(t, len);
  return len;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<CurlHttpTransport::Transfer*>(user);
  const CancellationToken* cancel = t->request->cancel;
  return (cancel != nullptr && cancel->IsCancelled()) ? 1 : 0;
}

// Called by curl before each request it sends on a connection. libcurl 7.88 re-sends a
// request by itself (up to 5 times, invisible to us) when a reused keep-alive connection
// closes without an answer; the provider may have received - and billed - the first one.
// Refusing the second start turns that into an error our retry loop counts and caps.
int OnPrereq(void* user, char*, char*, int, int) {
  auto* t = static_cast<CurlHttpTransport::Transfer*>(user);
  if (++t->requests_started == 1) return CURL_PREREQFUNC_OK;
  t->resend_refused = true;
  return CURL_PREREQFUNC_ABORT;
}

long ClampMs(absl::Duration d) {  // NOLINT(runtime/int): curl's type
  // Rounded up: a timeout that fires early would end a call before its deadline.
  int64_t ms = absl::ToInt64Milliseconds(absl::Ceil(d, absl::Milliseconds(1)));
  return static_cast<long>(std::clamp<int64_t>(ms, 1, 24LL * 3600 * 1000));  // NOLINT
}

std::once_flag g_curl_init;

}  // namespace

absl::StatusOr<std::unique_ptr<CurlHttpTransport>> CurlHttpTransport::Create(Options options) {
  CURLcode init = CURLE_OK;
  std::call_once(g_curl_init, [&] { init = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (init != CURLE_OK) {
    return absl::InternalError(absl::StrCat("curl_global_init: ", curl_easy_strerror(init)));
  }
  CURLM* multi = curl_multi_init();
  if (multi == nullptr) return absl::InternalError("curl_multi_init failed");
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, static_cast<long>(options.max_idle_connections));
  curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                    static_cast<long>(options.max_host_connections));
  return std::unique_ptr<CurlHttpTransport>(new CurlHttpTransport(options, multi));
}

CurlHttpTransport::CurlHttpTransport(Options options, void* multi)
    : options_(options), multi_(multi) {
  thread_ = std::thread([this] { Loop(); });
}

CurlHttpTransport::~CurlHttpTransport() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  curl_multi_wakeup(static_cast<CURLM*>(multi_));
  thread_.join();
  absl::MutexLock lock(&mu_);
  for (void* easy : idle_easy_) curl_easy_cleanup(static_cast<CURL*>(easy));
  idle_easy_.clear();
  curl_multi_cleanup(static_cast<CURLM*>(multi_));
}

void* CurlHttpTransport::AcquireEasy() {
  {
    absl::MutexLock lock(&mu_);
    if (!idle_easy_.empty()) {
      void* easy = idle_easy_.back();
      idle_easy_.pop_back();
      return easy;
    }
  }
  return curl_easy_init();
}

void CurlHttpTransport::ReleaseEasy(void* easy) {
  curl_easy_reset(static_cast<CURL*>(easy));
  absl::MutexLock lock(&mu_);
  idle_easy_.push_back(easy);
}

absl::StatusOr<HttpResponse> CurlHttpTransport::Send(const HttpRequest& request) {
  if (!absl::StartsWithIgnoreCase(request.url, "https://") &&
      !absl::StartsWithIgnoreCase(request.url, "http://")) {
    return InvalidRequestError("http transport: only http and https URLs are allowed");
  }
  if (request.cancel != nullptr && request.cancel->IsCancelled()) {
    return CancelledError(absl::StrCat("cancelled: ", request.cancel->reason()));
  }
  if (request.total_timeout <= absl::ZeroDuration()) {
    return RetryableError("http transport: no time left for the request");
  }
  Transfer t;
  t.request = &request;
  t.easy = static_cast<CURL*>(AcquireEasy());
  if (t.easy == nullptr) return absl::InternalError("curl_easy_init failed");
  CURL* e = t.easy;
  curl_easy_setopt(e, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "https");
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ClampMs(request.connect_timeout));
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, ClampMs(request.total_timeout));
  curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE,
                   static_cast<curl_off_t>(request.max_response_bytes));
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t.errbuf);
  curl_easy_setopt(e, CURLOPT_PRIVATE, &t);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &OnWrite);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, &OnProgress);
  curl_easy_setopt(e, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, &OnPrereq);
  curl_easy_setopt(e, CURLOPT_PREREQDATA, &t);
  for (const auto& [name, value] : request.headers) {
    t.headers = curl_slist_append(t.headers, absl::StrCat(name, ": ", value).c_str());
  }
  // No "Expect: 100-continue" round trip for larger bodies.
  t.headers = curl_slist_append(t.headers, "Expect:");
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t.headers);
  if (request.method == "POST") {
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, request.body.data());
  } else if (request.method == "GET") {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    if (!request.body.empty()) {
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(request.body.size()));
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, request.body.data());
    }
  }
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      curl_slist_free_all(t.headers);
      curl_easy_cleanup(e);
      return CancelledError("http transport is shutting down");
    }
    pending_.push_back(&t);
  }
  curl_multi_wakeup(static_cast<CURLM*>(multi_));
  t.done.WaitForNotification();
  if (!t.status.ok()) return t.status;
  return std::move(t.response);
}

void CurlHttpTransport::Finish(Transfer* t, int code_int) {
  CURLcode code = static_cast<CURLcode>(code_int);
  if (code == CURLE_OK) {
    long status = 0;  // NOLINT(runtime/int)
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    t->response.status = static_cast<int>(status);
    t->status = absl::OkStatus();
  } else if (t->resend_refused) {
    t->status = WithRetryCause(
        RetryableError("http transport: the provider closed a reused connection without "
                       "answering (not re-sent by curl; the retry loop decides)"),
        kCauseConnectionClosed);
  } else if (t->too_large || code == CURLE_FILESIZE_EXCEEDED) {
    t->status = ProviderError(
        absl::StrFormat("response body exceeds the %d byte cap", t->request->max_response_bytes));
  } else if (code == CURLE_ABORTED_BY_CALLBACK) {
    t->status = CancelledError(absl::StrCat("cancelled: ", t->request->cancel != nullptr
                                                               ? t->request->cancel->reason()
                                                               : std::string("aborted")));
  } else {
    std::string detail = t->errbuf[0] != '\0' ? std::string(t->errbuf) : std::string();
    std::string message = absl::StrCat("http transport: ", curl_easy_strerror(code),
                                       detail.empty() ? "" : absl::StrCat(" (", detail, ")"));
    switch (code) {
      case CURLE_UNSUPPORTED_PROTOCOL:
      case CURLE_URL_MALFORMAT:
        t->status = InvalidRequestError(message);
        break;
      case CURLE_PEER_FAILED_VERIFICATION:
      case CURLE_SSL_CERTPROBLEM:
      case CURLE_SSL_CACERT_BADFILE:
        t->status = ProviderError(message);
        break;
      default:
        // Connect failures, resets, empty replies, truncated bodies, timeouts: transient.
        t->status = RetryableError(message);
        break;
    }
  }
  Abort(t, t->status);
}

// Removes the transfer from curl and wakes its caller with `status` (which may be OK).
void CurlHttpTransport::Abort(Transfer* t, absl::Status status) {
  CURLM* multi = static_cast<CURLM*>(multi_);
  curl_multi_remove_handle(multi, t->easy);
  curl_slist_free_all(t->headers);
  t->headers = nullptr;
  ReleaseEasy(t->easy);
  t->easy = nullptr;
  t->status = std::move(status);
  active_.erase(std::remove(active_.begin(), active_.end(), t), active_.end());
  t->done.Notify();  // last touch: the caller may destroy *t right after
}

void CurlHttpTransport::Loop() {
  CURLM* multi = static_cast<CURLM*>(multi_);
  std::vector<Transfer*> incoming;
  while (true) {
    bool stopping;
    {
      absl::MutexLock lock(&mu_);
      incoming.swap(pending_);
      stopping = stopping_;
    }
    for (Transfer* t : incoming) {
      if (stopping) {
        active_.push_back(t);
        curl_multi_add_handle(multi, t->easy);
        continue;
      }
      CURLMcode rc = curl_multi_add_handle(multi, t->easy);
      active_.push_back(t);
      if (rc != CURLM_OK) {
        Abort(t, absl::InternalError(
                     absl::StrCat("curl_multi_add_handle: ", curl_multi_strerror(rc))));
      }
    }
    incoming.clear();
    if (stopping) {
      while (!active_.empty()) {
        Abort(active_.back(), CancelledError("http transport is shutting down"));
      }
      return;
    }

    int running = 0;
    curl_multi_perform(multi, &running);
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
      if (msg->msg != CURLMSG_DONE) continue;
      Transfer* t = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&t));
      if (t != nullptr) Finish(t, msg->data.result);
    }

    // Cancellation and stall detection for transfers curl is still waiting on.
    absl::Time now = absl::Now();
    for (size_t i = 0; i < active_.size();) {
      Transfer* t = active_[i];
      const HttpRequest& r = *t->request;
      if (r.cancel != nullptr && r.cancel->IsCancelled()) {
        Abort(t, CancelledError(absl::StrCat("cancelled: ", r.cancel->reason())));
        continue;
      }
      if (Stalled(t, now)) {
        Abort(t, WithRetryCause(RetryableError(absl::StrFormat(
                                    "http transport: response stalled (< %d bytes/s over the "
                                    "last %s)",
                                    r.low_speed_limit, absl::FormatDuration(r.low_speed_time))),
                                kCauseStalled));
        continue;
      }
      ++i;
    }

    curl_multi_poll(multi, nullptr, 0, kMaxPollMs, nullptr);
  }
}

}  // namespace elexirion::llm
