#include "server/llm/usage.h"

#include "absl/strings/str_format.h"
#include "server/llm/llm_client.h"

namespace elexirion::llm {

absl::Status UsageAccount::CheckBudget() const {
  absl::MutexLock lock(&mu_);
  if (limits_.max_calls > 0 && usage_.llm_calls >= limits_.max_calls) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("budget exhausted: %d of %d LLM calls used", usage_.llm_calls,
                        limits_.max_calls));
  }
  if (limits_.max_usd > 0 && usage_.cost_usd >= limits_.max_usd) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "budget exhausted: $%.4f of $%.4f spent", usage_.cost_usd, limits_.max_usd));
  }
  return absl::OkStatus();
}

void UsageAccount::Record(const LlmResponse& response) {
  absl::MutexLock lock(&mu_);
  if (response.cache_hit) {
    ++usage_.cache_hits;
    return;
  }
  ++usage_.llm_calls;
  usage_.input_tokens += response.input_tokens;
  usage_.output_tokens += response.output_tokens;
  usage_.cost_usd += response.cost_usd;
}

void UsageAccount::Add(const Usage& usage) {
  absl::MutexLock lock(&mu_);
  usage_.llm_calls += usage.llm_calls;
  usage_.cache_hits += usage.cache_hits;
  usage_.input_tokens += usage.input_tokens;
  usage_.output_tokens += usage.output_tokens;
  usage_.cost_usd += usage.cost_usd;
}

Usage UsageAccount::Snapshot() const {
  absl::MutexLock lock(&mu_);
  return usage_;
}

}  // namespace elexirion::llm
