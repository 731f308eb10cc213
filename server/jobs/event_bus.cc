#include "server/jobs/event_bus.h"

#include <algorithm>

namespace elexirion::jobs {

bool IsTerminalEvent(const v1::ProgressEvent& event) {
  if (!event.has_state_changed()) return false;
  const v1::JobState state = event.state_changed().state();
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

JobEventBus::JobEventBus(Options options) : options_(options) {
  dispatcher_ = std::thread([this] { DispatchLoop(); });
}

JobEventBus::~JobEventBus() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  dispatcher_.join();
}

int64_t JobEventBus::Subscribe(const std::string& job_id, Callback callback) {
  absl::MutexLock lock(&mu_);
  const int64_t token = next_token_++;
  channels_[job_id].subscribers[token] = std::make_shared<Subscription>(std::move(callback));
  job_of_[token] = job_id;
  return token;
}

void JobEventBus::Unsubscribe(int64_t token) {
  std::shared_ptr<Subscription> subscription;
  {
    absl::MutexLock lock(&mu_);
    auto job = job_of_.find(token);
    if (job == job_of_.end()) return;
    auto channel = channels_.find(job->second);
    auto it = channel->second.subscribers.find(token);
    subscription = std::move(it->second);
    channel->second.subscribers.erase(it);
    job_of_.erase(job);
    if (channel->second.subscribers.empty()) {
      // A running job's events stay for the next watcher; an ended, relayed or empty one goes.
      if (channel->second.ended || !channel->second.kept) {
        channels_.erase(channel);
      } else {
        EvictUnwatched();
      }
    }
  }
  // Waits for a callback in progress on the dispatch thread; none starts after this.
  absl::MutexLock lock(&subscription->mu);
  subscription->active = false;
}

void JobEventBus::Publish(const v1::ProgressEvent& event, bool keep_unwatched) {
  absl::MutexLock lock(&mu_);
  auto [it, created] = channels_.try_emplace(event.job_id());
  Channel& channel = it->second;
  if (event.seq() <= channel.last_seq) {  // already published (local worker or relay)
    if (created) channels_.erase(it);     // (or no seq at all)
    return;
  }
  const bool terminal = IsTerminalEvent(event);
  if (channel.subscribers.empty()) {
    if (terminal || (created && !keep_unwatched)) {
      // Nobody to tell, and later watchers of an ended job read the store.
      channels_.erase(it);
      return;
    }
  }
  channel.kept = channel.kept || keep_unwatched;
  // Only consecutive events are kept, so a watcher can tell what memory covers.
  if (event.seq() != channel.last_seq + 1) channel.recent.clear();
  auto shared = std::make_shared<const v1::ProgressEvent>(event);
  channel.recent.push_back(shared);
  while (channel.recent.size() > options_.retained_events) channel.recent.pop_front();
  channel.last_seq = event.seq();
  channel.published_at = ++publish_clock_;
  channel.ended = terminal;
  if (channel.subscribers.empty()) {
    if (created) EvictUnwatched();
    return;
  }
  ++published_;
  channel.undispatched.push_back(std::move(shared));
  while (channel.undispatched.size() > options_.retained_events) {
    channel.undispatched.pop_front();
  }
  if (!channel.dirty) {
    channel.dirty = true;
    dirty_.push_back(event.job_id());
  }
}

void JobEventBus::EvictUnwatched() {
  std::vector<std::map<std::string, Channel>::iterator> unwatched;
  for (auto it = channels_.begin(); it != channels_.end(); ++it) {
    if (it->second.subscribers.empty()) unwatched.push_back(it);
  }
  if (unwatched.size() <= options_.max_unwatched_jobs) return;
  const size_t excess = unwatched.size() - options_.max_unwatched_jobs;
  std::nth_element(
      unwatched.begin(), unwatched.begin() + (excess - 1), unwatched.end(),
      [](const auto& a, const auto& b) { return a->second.published_at < b->second.published_at; });
  for (size_t i = 0; i < excess; ++i) channels_.erase(unwatched[i]);
}

void JobEventBus::DispatchLoop() {
  struct Delivery {
    std::vector<EventPtr> events;
    std::vector<std::shared_ptr<Subscription>> subscribers;
  };
  while (true) {
    std::vector<Delivery> round;
    int64_t target;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !dirty_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      target = published_;
      for (const std::string& job : dirty_) {
        auto it = channels_.find(job);
        if (it == channels_.end()) continue;  // evicted or ended since
        Channel& channel = it->second;
        channel.dirty = false;
        Delivery delivery;
        delivery.events.assign(channel.undispatched.begin(), channel.undispatched.end());
        channel.undispatched.clear();
        for (const auto& [token, subscription] : channel.subscribers) {
          delivery.subscribers.push_back(subscription);
        }
        if (!channel.subscribers.empty() && !delivery.events.empty()) {
          round.push_back(std::move(delivery));
        }
      }
      dirty_.clear();
    }
    for (const Delivery& delivery : round) {
      for (const auto& subscription : delivery.subscribers) {
        absl::MutexLock lock(&subscription->mu);
        if (subscription->active) subscription->callback(delivery.events);
      }
    }
    absl::MutexLock lock(&mu_);
    delivered_ = std::max(delivered_, target);
  }
}

std::vector<JobEventBus::EventPtr> JobEventBus::Recent(const std::string& job_id, int64_t after_seq,
                                                       size_t max, bool* complete) const {
  absl::MutexLock lock(&mu_);
  *complete = false;
  std::vector<EventPtr> out;
  auto it = channels_.find(job_id);
  if (it == channels_.end() || it->second.recent.empty()) return out;
  const std::deque<EventPtr>& recent = it->second.recent;
  const int64_t first = recent.front()->seq();
  if (after_seq + 1 < first || after_seq >= recent.back()->seq()) return out;
  *complete = true;
  for (size_t i = static_cast<size_t>(after_seq + 1 - first); i < recent.size() && out.size() < max;
       ++i) {
    out.push_back(recent[i]);
  }
  return out;
}

int64_t JobEventBus::LastPublishedSeq(const std::string& job_id) const {
  absl::MutexLock lock(&mu_);
  auto it = channels_.find(job_id);
  return it == channels_.end() ? 0 : it->second.last_seq;
}

bool JobEventBus::IsWatched(const std::string& job_id) const {
  absl::MutexLock lock(&mu_);
  auto it = channels_.find(job_id);
  return it != channels_.end() && !it->second.subscribers.empty();
}

std::vector<std::string> JobEventBus::WatchedJobs() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> jobs;
  for (const auto& [job, channel] : channels_) {
    if (!channel.subscribers.empty()) jobs.push_back(job);
  }
  return jobs;
}

int JobEventBus::subscribers() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(job_of_.size());
}

void JobEventBus::Flush() {
  absl::MutexLock lock(&mu_);
  const int64_t target = published_;
  auto done = [this, target]()
                  ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || delivered_ >= target; };
  mu_.Await(absl::Condition(&done));
}

}  // namespace elexirion::jobs
