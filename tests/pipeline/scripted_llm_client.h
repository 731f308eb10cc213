// A scripted llm::LlmClient for unit tests of the pipeline engine's logic.
//
// Answers by rules: the first rule whose `contains` text occurs in the prompt (the last user
// message) wins; otherwise "response to: <first 40 bytes of the prompt>". Honours the call
// contract like a real client: cancellation -> CANCELLED, a past deadline ->
// DEADLINE_EXCEEDED, an exhausted account -> RESOURCE_EXHAUSTED, and records usage on the
// account. Every request is kept for inspection.
//
// Thread safe.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "server/llm/llm_client.h"

namespace elexirion::pipeline::testing {

class ScriptedLlmClient final : public llm::LlmClient {
 public:
  using Handler = std::function<absl::StatusOr<llm::LlmResponse>(const llm::LlmRequest&)>;

  // Replies `text` when the prompt contains `contains` ("" matches everything).
  void Reply(std::string contains, std::string text) {
    absl::MutexLock lock(&mu_);
    rules_.push_back(Rule{std::move(contains), std::move(text), absl::OkStatus(), 0});
  }
  // Fails with `status` when the prompt contains `contains`; `times` > 0 limits how often.
  void Fail(std::string contains, absl::Status status, int times = 0) {
    absl::MutexLock lock(&mu_);
    rules_.push_back(Rule{std::move(contains), "", std::move(status), times});
  }
  // Full control; overrides the rules.
  void SetHandler(Handler handler) {
    absl::MutexLock lock(&mu_);
    handler_ = std::move(handler);
  }

  std::vector<llm::LlmRequest> requests() const {
    absl::MutexLock lock(&mu_);
    return requests_;
  }
  size_t call_count() const {
    absl::MutexLock lock(&mu_);
    return requests_.size();
  }
  static const std::string& PromptOf(const llm::LlmRequest& request) {
    return request.messages.back().content;
  }

  absl::StatusOr<llm::LlmResponse> Complete(const llm::LlmRequest& request,
                                            const llm::CallOptions& options) override {
    if (options.cancel != nullptr && options.cancel->IsCancelled()) {
      return absl::CancelledError(options.cancel->reason());
    }
    if (absl::Now() >= options.deadline) return absl::DeadlineExceededError("deadline passed");
    if (options.account != nullptr) {
      if (absl::Status s = options.account->CheckBudget(); !s.ok()) return s;
    }
    Handler handler;
    std::string text;
    absl::Status status;
    {
      absl::MutexLock lock(&mu_);
      requests_.push_back(request);
      handler = handler_;
      if (!handler) {
        const std::string& prompt = PromptOf(request);
        text = "response to: " + prompt.substr(0, 40);
        for (Rule& rule : rules_) {
          if (!absl::StrContains(prompt, rule.contains)) continue;
          if (!rule.status.ok()) {
            if (rule.times < 0) continue;  // used up
            if (rule.times > 0 && --rule.times == 0) rule.times = -1;
            status = rule.status;
          } else {
            text = rule.text;
          }
          break;
        }
      }
    }
    absl::StatusOr<llm::LlmResponse> response;
    if (handler) {
      response = handler(request);
    } else if (!status.ok()) {
      response = status;
    } else {
      llm::LlmResponse r;
      r.text = text;
      r.finish_reason = "stop";
      r.input_tokens = static_cast<int64_t>(PromptOf(request).size() / 4 + 1);
      r.output_tokens = static_cast<int64_t>(text.size() / 4 + 1);
      r.cost_usd = 0.001;
      r.provider = request.provider.empty() ? "default" : request.provider;
      r.model = request.model.empty() ? "default-model" : request.model;
      response = r;
    }
    if (response.ok() && options.account != nullptr) options.account->Record(*response);
    return response;
  }

 private:
  struct Rule {
    std::string contains;
    std::string text;
    absl::Status status;
    int times;
  };
  mutable absl::Mutex mu_;
  std::vector<Rule> rules_ ABSL_GUARDED_BY(mu_);
  Handler handler_ ABSL_GUARDED_BY(mu_);
  std::vector<llm::LlmRequest> requests_ ABSL_GUARDED_BY(mu_);
};

}  // namespace elexirion::pipeline::testing
