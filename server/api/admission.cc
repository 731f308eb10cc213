#include "server/api/admission.h"

#include "absl/strings/str_cat.h"
#include "server/metrics/rpc_metrics.h"

namespace elexirion::api {

Admission::Ticket& Admission::Ticket::operator=(Ticket&& other) noexcept {
  if (this != &other) {
    Release();
    counter_ = other.counter_;
    other.counter_ = nullptr;
  }
  return *this;
}

void Admission::Ticket::Release() {
  if (counter_ != nullptr) {
    metrics::SetInflightRpcs(counter_->fetch_sub(1) - 1);
    counter_ = nullptr;
  }
}

absl::Status Admission::Admit(std::atomic<int64_t>* counter, int64_t max, const char* what,
                              Ticket* ticket) {
  if (draining_.load()) {
    return absl::UnavailableError("server is shutting down; retry on another replica");
  }
  int64_t now = counter->fetch_add(1) + 1;
  if (now > max) {
    counter->fetch_sub(1);
    return absl::ResourceExhaustedError(
        absl::StrCat("server busy: ", max, " ", what, " in flight; retry with backoff"));
  }
  metrics::SetInflightRpcs(now);
  *ticket = Ticket(counter);
  return absl::OkStatus();
}

}  // namespace elexirion::api
