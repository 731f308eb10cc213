// How a replica learns that some process (any replica) appended events to a job: the I/O
// seam of the cross-replica StreamProgress relay. PostgreSQL's LISTEN/NOTIFY is the real one
// (pg_job_notifications.h); tests of the relay's logic script their own.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace elexirion::jobs {

// Used by one thread at a time.
class JobNotificationSource {
 public:
  virtual ~JobNotificationSource() = default;
  // (Re)connects and starts listening. UNAVAILABLE when the database cannot be reached.
  // Notifications sent while not connected are lost: the caller re-reads after a connect.
  virtual absl::Status Connect() = 0;
  // Waits up to `timeout` for notifications and returns the job ids they name (empty on a
  // timeout; the same id may appear several times). UNAVAILABLE when the connection is lost
  // (call Connect() again).
  virtual absl::StatusOr<std::vector<std::string>> Wait(absl::Duration timeout) = 0;
};

}  // namespace elexirion::jobs
