#include "server/jobs/pg_job_notifications.h"

#include <pqxx/pqxx>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace elexirion::jobs {
namespace {

// libpq accepts key=value strings and postgres:// URIs; both take connect_timeout.
std::string WithConnectTimeout(const std::string& dsn, int seconds) {
  if (seconds <= 0 || absl::StrContains(dsn, "connect_timeout")) return dsn;
  if (absl::StartsWith(dsn, "postgres://") || absl::StartsWith(dsn, "postgresql://")) {
    return absl::StrCat(dsn, absl::StrContains(dsn, "?") ? "&" : "?", "connect_timeout=", seconds);
  }
  return absl::StrCat(dsn, " connect_timeout=", seconds);
}

class Receiver final : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection_base& conn, const std::string& channel, std::vector<std::string>* out)
      : pqxx::notification_receiver(conn, channel), out_(out) {}
  void operator()(const std::string& payload, int) override { out_->push_back(payload); }

 private:
  std::vector<std::string>* const out_;
};

}  // namespace

struct PgJobNotifications::Session {
  Session(const std::string& dsn, const std::string& channel, std::vector<std::string>* out)
      : conn(dsn), receiver(conn, channel, out) {}
  pqxx::connection conn;
  // Registering the receiver runs LISTEN on the open connection.
  Receiver receiver;
};

PgJobNotifications::PgJobNotifications(Options options) : options_(std::move(options)) {}

PgJobNotifications::~PgJobNotifications() = default;

absl::Status PgJobNotifications::Lost(const char* what) {
  session_.reset();
  received_.clear();
  // libpq's messages name host and port, never the password; still, keep them out.
  return absl::UnavailableError(absl::StrCat("job event listener: ", what));
}

absl::Status PgJobNotifications::Connect() {
  session_.reset();
  received_.clear();
  try {
    session_ = std::make_unique<Session>(
        WithConnectTimeout(options_.dsn, options_.connect_timeout_seconds), options_.channel,
        &received_);
    session_->conn.get_notifs();
    backend_pid_ = session_->conn.backendpid();
  } catch (const pqxx::broken_connection&) {
    return Lost("cannot connect to the database");
  } catch (const std::exception&) {
    return Lost("LISTEN failed");
  }
  last_checked_ = absl::Now();
  return absl::OkStatus();
}

absl::Status PgJobNotifications::Check() {
  try {
    pqxx::nontransaction tx(session_->conn);
    tx.exec("SELECT 1");
  } catch (const std::exception&) {
    return Lost("connection lost");
  }
  last_checked_ = absl::Now();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> PgJobNotifications::Wait(absl::Duration timeout) {
  if (session_ == nullptr) return absl::UnavailableError("job event listener: not connected");
  const absl::Time start = absl::Now();
  try {
    const int64_t micros = std::max<int64_t>(0, absl::ToInt64Microseconds(timeout));
    session_->conn.await_notification(static_cast<long>(micros / 1000000),
                                      static_cast<long>(micros % 1000000));
  } catch (const std::exception&) {
    return Lost("connection lost");
  }
  // libpqxx may quietly reopen a broken connection: a new backend has not run our LISTEN
  // from the start, so notifications may have been missed. Report it as a reconnect.
  if (!session_->conn.is_open() || session_->conn.backendpid() != backend_pid_) {
    return Lost("connection lost");
  }
  const absl::Time now = absl::Now();
  if (received_.empty()) {
    // A wait that ends early with nothing may be a closed socket; so may a long silence.
    if (now - start < timeout / 2 || now - last_checked_ >= options_.idle_check) {
      if (absl::Status s = Check(); !s.ok()) return s;
    }
  } else {
    last_checked_ = now;
  }
  std::vector<std::string> out;
  out.swap(received_);
  return out;
}

}  // namespace elexirion::jobs
