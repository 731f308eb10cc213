// The libpqxx (6.x) adapter of PostgresStore: connections with a cache of prepared statements,
// a bounded connection pool, conversion of pqxx exceptions to absl::Status, and the small
// encoders the store's SQL needs (array literals for batched inserts, times as microseconds).
//
// Errors (PgErrorStatus): a lost connection or a server shutting down -> UNAVAILABLE (the pool
// discards the connection and opens a new one on the next use); unique violation ->
// ALREADY_EXISTS; foreign key violation -> FAILED_PRECONDITION; other constraint and data
// errors (bad UTF-8, value too long) -> INVALID_ARGUMENT; serialization failure / deadlock ->
// ABORTED (retried by the store before a caller sees it); disk full / out of memory / too many
// connections -> RESOURCE_EXHAUSTED; data corruption -> DATA_LOSS; anything else -> INTERNAL.
// No message ever contains the DSN's password (RedactDsn).
//
// Thread safety: a Connection is used by one thread at a time (the pool hands each to one
// lease holder); ConnectionPool is thread safe.
#pragma once

#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "pqxx/pqxx"

namespace pqxx {
class tablewriter;
}  // namespace pqxx

namespace elexirion::store::pg {

// `dsn` with any password replaced by "***": key/value form (password=... or
// password='...') and URI form (postgresql://user:secret@host).
std::string RedactDsn(absl::string_view dsn);
// Replaces every occurrence of the password of `dsn` (if any) in `text` by "***": libpq
// messages may echo parts of the connection string.
std::string RedactPassword(absl::string_view dsn, absl::string_view text);

// Converts an exception thrown by pqxx (or the standard library) to a Status; see the file
// comment. `context` prefixes the message.
absl::Status PgErrorStatus(const std::exception& e, absl::string_view context);
// True for errors that mean the connection is unusable (it must be discarded).
bool IsConnectionError(const std::exception& e);
// True for serialization failures and deadlocks: the transaction may simply be run again.
bool IsRetryableConflict(const std::exception& e);

// Times are stored as BIGINT unix microseconds (exact round trip, like SQLite);
// NULL columns read as kUnsetTime.
int64_t Micros(absl::Time t);
// A PostgreSQL array literal ("{...}") of text elements (nullopt = NULL) for unnest($n::text[]).
std::string TextArray(const std::vector<std::optional<std::string>>& values);
std::string Int64Array(const std::vector<int64_t>& values);
std::string BoolArray(const std::vector<bool>& values);
// Shortest exact decimal form of each double.
std::string DoubleArray(const std::vector<double>& values);
// Shortest exact decimal form of one double (parameters must not lose precision).
std::string DoubleText(double v);
// Appends `value` as one field of COPY's text format (backslash, tab, newline and carriage
// return escaped) to `out`.
void AppendCopyField(absl::string_view value, std::string& out);

// COPY table (columns) FROM STDIN of rows the caller writes in COPY's text format, sent in
// writes of about 1 MiB (bounded memory, few libpq calls). The rows go as they are: libpqxx
// 6's stream_to builds each row from per-field strings and cost ~4 us more per row; its
// deprecated tablewriter is the only public way to send COPY data as is.
class CopyIn {
 public:
  CopyIn(pqxx::transaction_base& txn, const std::string& table,
         const std::vector<std::string>& columns);
  ~CopyIn();
  CopyIn(const CopyIn&) = delete;
  CopyIn& operator=(const CopyIn&) = delete;
  // Starts a row; append its tab-separated fields (AppendCopyField) to the returned buffer.
  std::string& NewRow();
  // Sends what is left and ends the COPY; throws what PostgreSQL reports (e.g. a unique
  // violation).
  void Complete();

 private:
  std::unique_ptr<pqxx::tablewriter> copy_;
  std::string chunk_;
};
// True when `s` is valid UTF-8 without NUL bytes: what a PostgreSQL text column accepts.
bool IsStorableText(absl::string_view s);

// Reading result fields (NULL reads as "", 0, false or kUnsetTime).
std::string Text(const pqxx::field& f);
// A BYTEA column.
std::string Bytes(const pqxx::field& f);
int64_t Int(const pqxx::field& f);
double Double(const pqxx::field& f);
bool Bool(const pqxx::field& f);
absl::Time TimeOf(const pqxx::field& f);
// A BYTEA parameter (sent in binary: any bytes).
inline pqxx::binarystring Blob(const std::string& s) {
  return pqxx::binarystring(s.data(), s.size());
}

// One server connection and its prepared statements.
class Connection {
 public:
  // Connects (connect_timeout is added to `dsn` unless it sets one). UNAVAILABLE with the
  // redacted DSN when the server cannot be reached or refuses us.
  static absl::StatusOr<std::unique_ptr<Connection>> Open(const std::string& dsn,
                                                          absl::Duration connect_timeout);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  pqxx::connection& raw() { return *conn_; }
  // The prepared statement for `sql` on this connection (prepared on first use); its name is
  // what pqxx's exec_prepared takes.
  const std::string& Prepared(const std::string& sql);

 private:
  explicit Connection(std::unique_ptr<pqxx::connection> conn) : conn_(std::move(conn)) {}
  std::unique_ptr<pqxx::connection> conn_;
  int next_statement_ = 0;
  absl::flat_hash_map<std::string, std::string> prepared_;
};

class ConnectionPool {
 public:
  struct Options {
    // libpq connection string (key=value or postgresql:// URI). May hold a password.
    std::string dsn;
    // At most this many open connections (callers wait for a free one beyond).
    int size = 8;
    // Per connection attempt.
    absl::Duration connect_timeout = absl::Seconds(5);
    // How long Acquire waits for a free connection before UNAVAILABLE.
    absl::Duration acquire_timeout = absl::Seconds(30);
  };

  // A connection checked out of the pool; returned to it when destroyed, or closed when
  // Discard() was called (the connection broke).
  class Lease {
   public:
    Lease(ConnectionPool* pool, std::unique_ptr<Connection> conn, bool reused)
        : pool_(pool), conn_(std::move(conn)), reused_(reused) {}
    Lease(Lease&&) = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    Connection& operator*() { return *conn_; }
    Connection* operator->() { return conn_.get(); }
    // The connection is unusable: close it instead of returning it, and close the idle
    // ones too (a broken connection usually means the server restarted).
    void Discard() { discard_ = true; }
    // True when the connection was opened earlier (it may have died while idle).
    bool reused() const { return reused_; }

   private:
    ConnectionPool* pool_;
    std::unique_ptr<Connection> conn_;
    bool reused_;
    bool discard_ = false;
  };

  // Checks the options and opens one connection, so a wrong DSN or an unreachable server is
  // reported at once (UNAVAILABLE / INVALID_ARGUMENT, password redacted).
  static absl::StatusOr<std::unique_ptr<ConnectionPool>> Create(Options options);

  // An idle connection, or a new one while fewer than `size` are open.
  absl::StatusOr<Lease> Acquire();
  const std::string& redacted_dsn() const { return redacted_dsn_; }

 private:
  explicit ConnectionPool(Options options);
  void Return(std::unique_ptr<Connection> conn, bool discard);

  const Options options_;
  const std::string redacted_dsn_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_ ABSL_GUARDED_BY(mu_);
  // Open connections: idle plus leased plus being opened.
  int open_ ABSL_GUARDED_BY(mu_) = 0;
};

// A transaction (or autocommit session) on a pooled connection, as the store's SQL code sees
// it: Exec runs `sql` as a cached prepared statement.
class Tx {
 public:
  Tx(Connection& conn, pqxx::transaction_base& txn) : conn_(conn), txn_(txn) {}
  template <typename... Args>
  pqxx::result Exec(const std::string& sql, Args&&... args) {
    return txn_.exec_prepared(conn_.Prepared(sql), std::forward<Args>(args)...);
  }
  pqxx::transaction_base& txn() { return txn_; }

 private:
  Connection& conn_;
  pqxx::transaction_base& txn_;
};

}  // namespace elexirion::store::pg
