#include "server/jobs/event_bus.h"

namespace elexirion::jobs {

int64_t JobEventBus::Subscribe(const std::string& job_id, Callback callback) {
  absl::MutexLock lock(&mu_);
  int64_t token = next_token_++;
  subscriptions_[token] = std::make_shared<Subscription>(job_id, std::move(callback));
  by_job_.emplace(job_id, token);
  return token;
}

void JobEventBus::Unsubscribe(int64_t token) {
  std::shared_ptr<Subscription> subscription;
  {
    absl::MutexLock lock(&mu_);
    auto it = subscriptions_.find(token);
    if (it == subscriptions_.end()) return;
    auto range = by_job_.equal_range(it->second->job_id);
    for (auto j = range.first; j != range.second; ++j) {
      if (j->second == token) {
        by_job_.erase(j);
        break;
      }
    }
    subscription = std::move(it->second);
    subscriptions_.erase(it);
  }
  // Waits for a callback in progress on another thread; none starts after this.
  absl::MutexLock lock(&subscription->mu);
  subscription->active = false;
}

void JobEventBus::Publish(const v1::ProgressEvent& event) {
  std::vector<std::shared_ptr<Subscription>> targets;
  {
    absl::MutexLock lock(&mu_);
    auto range = by_job_.equal_range(event.job_id());
    for (auto it = range.first; it != range.second; ++it) {
      targets.push_back(subscriptions_[it->second]);
    }
  }
  for (const auto& subscription : targets) {
    absl::MutexLock lock(&subscription->mu);
    if (subscription->active) subscription->callback(event);
  }
}

int JobEventBus::subscribers() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(subscriptions_.size());
}

}  // namespace elexirion::jobs
