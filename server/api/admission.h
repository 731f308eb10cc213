// Admission control for RPCs: a cap on calls handled at once (excess fails fast with
// RESOURCE_EXHAUSTED instead of queueing) and the drain switch used by graceful shutdown
// (new calls get UNAVAILABLE). Thread safe.
#pragma once

#include <atomic>
#include <cstdint>

#include "absl/status/status.h"

namespace elexirion::api {

class Admission {
 public:
  Admission(int64_t max_inflight_unary, int64_t max_streams)
      : max_unary_(max_inflight_unary), max_streams_(max_streams) {}

  // A slot held for the life of one call; release happens in the destructor.
  class Ticket {
   public:
    Ticket() = default;
    Ticket(Ticket&& other) noexcept : counter_(other.counter_) { other.counter_ = nullptr; }
    Ticket& operator=(Ticket&& other) noexcept;
    Ticket(const Ticket&) = delete;
    ~Ticket() { Release(); }
    void Release();

   private:
    friend class Admission;
    explicit Ticket(std::atomic<int64_t>* counter) : counter_(counter) {}
    std::atomic<int64_t>* counter_ = nullptr;
  };

  // OK with a ticket, RESOURCE_EXHAUSTED when full, UNAVAILABLE when draining.
  absl::Status AdmitUnary(Ticket* ticket) { return Admit(&unary_, max_unary_, "RPCs", ticket); }
  absl::Status AdmitStream(Ticket* ticket) {
    return Admit(&streams_, max_streams_, "streams", ticket);
  }

  void StartDraining() { draining_.store(true); }
  bool draining() const { return draining_.load(); }
  int64_t inflight_unary() const { return unary_.load(); }
  int64_t open_streams() const { return streams_.load(); }

 private:
  absl::Status Admit(std::atomic<int64_t>* counter, int64_t max, const char* what,
                     Ticket* ticket);

  const int64_t max_unary_;
  const int64_t max_streams_;
  std::atomic<int64_t> unary_{0};
  std::atomic<int64_t> streams_{0};
  std::atomic<bool> draining_{false};
};

}  // namespace elexirion::api
