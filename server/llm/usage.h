// Usage accounting and budgets for LLM calls.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace elexirion::llm {

struct Usage {
  int64_t llm_calls = 0;  // provider calls (cache hits excluded)
  int64_t cache_hits = 0;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  double cost_usd = 0;
};

// Limits; zero means unlimited.
struct BudgetLimits {
  int64_t max_calls = 0;
  double max_usd = 0;
};

struct LlmResponse;

// Accumulates the usage of many calls and enforces a budget. Thread safe.
class UsageAccount {
 public:
  explicit UsageAccount(BudgetLimits limits = {}) : limits_(limits) {}

  // RESOURCE_EXHAUSTED ("budget exhausted: ...") once a limit is reached, so the next call
  // fails cleanly instead of overspending.
  absl::Status CheckBudget() const;
  // Adds one finished call (a cache hit counts only as a hit).
  void Record(const LlmResponse& response);
  // Adds another account's usage (e.g. a sub-task's).
  void Add(const Usage& usage);
  Usage Snapshot() const;
  BudgetLimits limits() const { return limits_; }

 private:
  const BudgetLimits limits_;
  mutable absl::Mutex mu_;
  Usage usage_ ABSL_GUARDED_BY(mu_);
};

}  // namespace elexirion::llm
