#include "server/jobs/event_relay.h"

#include <algorithm>
#include <set>

#include "server/common/logging.h"
#include "server/jobs/worker_pool.h"

namespace elexirion::jobs {
namespace {

// Events read from the store per query.
constexpr int kPage = 256;

}  // namespace

absl::StatusOr<std::unique_ptr<JobEventRelay>> JobEventRelay::Create(Options options) {
  if (options.store == nullptr || options.bus == nullptr || options.source == nullptr) {
    return absl::InvalidArgumentError("JobEventRelay: store, bus and source are required");
  }
  if (options.poll <= absl::ZeroDuration() || options.min_backoff <= absl::ZeroDuration() ||
      options.max_backoff < options.min_backoff) {
    return absl::InvalidArgumentError("JobEventRelay: poll and backoff must be positive");
  }
  return std::unique_ptr<JobEventRelay>(new JobEventRelay(std::move(options)));
}

JobEventRelay::~JobEventRelay() { Stop(); }

void JobEventRelay::Start() {
  if (thread_.joinable() || stop_.HasBeenNotified()) return;
  thread_ = std::thread([this] { Loop(); });
}

void JobEventRelay::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

int64_t JobEventRelay::connects() const {
  absl::MutexLock lock(&mu_);
  return connects_;
}

void JobEventRelay::Loop() {
  absl::Duration backoff = options_.min_backoff;
  bool connected = false;
  bool warned = false;  // one warning per outage, not one per attempt
  absl::Time next_sweep = absl::InfiniteFuture();
  while (!stop_.HasBeenNotified()) {
    if (!connected) {
      absl::Status status = options_.source->Connect();
      if (!status.ok()) {
        if (!warned) {
          logging::Warning("job event listener cannot connect; retrying",
                           {{"error", std::string(status.message())}});
          warned = true;
        }
        stop_.WaitForNotificationWithTimeout(backoff);
        backoff = std::min(backoff * 2, options_.max_backoff);
        continue;
      }
      connected = true;
      warned = false;
      backoff = options_.min_backoff;
      int64_t connects;
      {
        absl::MutexLock lock(&mu_);
        connects = ++connects_;
      }
      logging::Info("job event listener connected", {{"connects", connects}});
      // Whatever was appended while we were not listening.
      SweepWatched();
      if (options_.sweep_interval > absl::ZeroDuration()) {
        next_sweep = absl::Now() + options_.sweep_interval;
      }
      continue;
    }
    auto notified = options_.source->Wait(options_.poll);
    if (!notified.ok()) {
      logging::Warning("job event listener lost its connection; reconnecting",
                       {{"error", std::string(notified.status().message())}});
      connected = false;
      continue;
    }
    // A burst of events of one job costs one read.
    for (const std::string& job : std::set<std::string>(notified->begin(), notified->end())) {
      Relay(job);
    }
    if (absl::Now() >= next_sweep) {
      SweepWatched();
      next_sweep = absl::Now() + options_.sweep_interval;
    }
  }
}

void JobEventRelay::SweepWatched() {
  for (const std::string& job : options_.bus->WatchedJobs()) Relay(job);
}

void JobEventRelay::Relay(const std::string& job_id) {
  if (!options_.bus->IsWatched(job_id)) return;
  int64_t after = options_.bus->LastPublishedSeq(job_id);
  if (after == 0) {
    // Nothing published here yet: watchers have read the job's past from the store, so only
    // its newest events are news.
    auto job = options_.store->GetJob(job_id);
    if (!job.ok()) {
      if (!absl::IsNotFound(job.status())) {
        logging::Warning("job event relay: reading the job failed",
                         {{"job_id", job_id}, {"error", std::string(job.status().message())}});
      }
      return;
    }
    after = std::max<int64_t>(0, job->last_event_seq - options_.first_read_window);
  }
  while (true) {
    auto events = options_.store->ListJobEvents(job_id, after, kPage);
    if (!events.ok()) {
      // The next notification or sweep reads from the same place again.
      logging::Warning("job event relay: reading events failed",
                       {{"job_id", job_id}, {"error", std::string(events.status().message())}});
      return;
    }
    for (const auto& record : *events) {
      auto event = EventFromRecord(record);
      if (!event.ok()) {
        logging::Warning("job event relay: corrupt event",
                         {{"job_id", job_id}, {"error", std::string(event.status().message())}});
        return;
      }
      options_.bus->Publish(*event, /*keep_unwatched=*/false);
      after = record.seq;
    }
    if (events->size() < static_cast<size_t>(kPage)) return;
  }
}

}  // namespace elexirion::jobs
