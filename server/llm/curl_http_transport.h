// HttpTransport over libcurl's multi interface: one event-loop thread drives every transfer
// of this transport, so dozens of concurrent calls cost one thread and share one connection
// cache (keep-alive reuse). One instance per provider instance keeps connections per
// provider.
//
// Safety settings on every transfer: CURLOPT_NOSIGNAL, no redirects (FOLLOWLOCATION 0; a
// 3xx is handed back as a response and treated as an error by the providers), protocols
// http/https only, connect and total timeouts, a sliding-window stall detector, the response-size
// cap enforced in the write callback (curl 7.88's MAXFILESIZE does not stop chunked bodies),
// cancellation polled by the loop (≤ 100 ms) and by the progress callback, and no silent
// re-send: curl's own retry of a request on a reused connection that died is refused
// (CURLOPT_PREREQFUNCTION) and reported as a retryable error with cause connection_closed,
// so the router's loop counts and caps every re-send. Never verbose:
// curl's verbose output would print the key headers.
#pragma once

#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/llm/http_transport.h"

namespace elexirion::llm {

// Thread safe. The destructor aborts transfers still running (their callers get
// CANCELLED) and joins the loop thread.
class CurlHttpTransport final : public HttpTransport {
 public:
  struct Options {
    // Idle connections kept for reuse (CURLMOPT_MAXCONNECTS). Size it to the instance's
    // concurrency limit so every concurrent call finds a warm connection.
    int max_idle_connections = 64;
    // Upper bound of simultaneous connections to one host; 0 = unlimited (the router's
    // per-instance semaphore is the real limit).
    int max_host_connections = 0;
  };

  static absl::StatusOr<std::unique_ptr<CurlHttpTransport>> Create(Options options);
  ~CurlHttpTransport() override;

  absl::StatusOr<HttpResponse> Send(const HttpRequest& request) override;

  struct Transfer;  // implementation detail (public only for the curl callbacks)

 private:
  explicit CurlHttpTransport(Options options, void* multi);
  void Loop();
  void Finish(Transfer* t, int curl_code);
  void Abort(Transfer* t, absl::Status status);
  void* AcquireEasy();
  void ReleaseEasy(void* easy);

  const Options options_;
  void* const multi_;  // CURLM*, used only by the loop thread (and curl_multi_wakeup)
  absl::Mutex mu_;
  std::vector<Transfer*> pending_ ABSL_GUARDED_BY(mu_);
  std::vector<void*> idle_easy_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Transfer*> active_;  // loop thread only
  std::thread thread_;
};

}  // namespace elexirion::llm
