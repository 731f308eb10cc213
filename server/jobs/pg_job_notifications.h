// JobNotificationSource over PostgreSQL LISTEN/NOTIFY: its own libpqxx connection listening on
// the channel the PostgreSQL store notifies in every job event append (payload: the job id).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "server/jobs/job_notifications.h"
#include "server/store/postgres_store.h"

namespace elexirion::jobs {

class PgJobNotifications final : public JobNotificationSource {
 public:
  struct Options {
    std::string dsn;  // required; a secret: never logged
    std::string channel = store::kJobEventsChannel;
    // With no notification for this long, a trivial query checks the connection is alive
    // (a dead one would otherwise look like a quiet one).
    absl::Duration idle_check = absl::Seconds(5);
    // Added to the DSN unless it sets its own: how long a connect may hang.
    int connect_timeout_seconds = 5;
  };

  explicit PgJobNotifications(Options options);
  ~PgJobNotifications() override;

  absl::Status Connect() override;
  absl::StatusOr<std::vector<std::string>> Wait(absl::Duration timeout) override;

 private:
  // The libpqxx connection and its receiver (libpqxx types stay in the .cc).
  struct Session;
  absl::Status Lost(const char* what);
  absl::Status Check();

  Options options_;
  std::unique_ptr<Session> session_;
  std::vector<std::string> received_;
  int backend_pid_ = 0;
  absl::Time last_checked_;
};

}  // namespace elexirion::jobs
