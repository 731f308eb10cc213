// Thin RAII layer over the SQLite C API used by SqliteStore: one connection with a cache of
// prepared statements, a checked-out statement handle, error conversion to absl::Status and a
// BEGIN IMMEDIATE transaction helper.
//
// Thread safety: a Connection (and every Stmt it hands out) is used by one thread at a time;
// the owner serializes access (SqliteStore holds a mutex per connection).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

struct sqlite3;
struct sqlite3_stmt;

namespace elexirion::store::sqlite {

// Converts a (possibly extended) SQLite result code to a Status:
// BUSY/LOCKED -> UNAVAILABLE (the busy_timeout already elapsed), CONSTRAINT_UNIQUE/PRIMARYKEY
// -> ALREADY_EXISTS, CONSTRAINT_FOREIGNKEY -> FAILED_PRECONDITION, other constraints and
// TOOBIG/RANGE/MISMATCH -> INVALID_ARGUMENT, CORRUPT/NOTADB -> DATA_LOSS, FULL/NOMEM ->
// RESOURCE_EXHAUSTED, CANTOPEN/IOERR/PERM/READONLY -> UNAVAILABLE, INTERRUPT -> CANCELLED,
// anything else -> INTERNAL. `db` (may be null) supplies the message.
absl::Status SqliteError(int rc, sqlite3* db, absl::string_view context);

class Connection;

// A cached prepared statement checked out for one execution. Reset (and its bindings cleared)
// when destroyed, so it goes back to the cache ready for reuse. Parameters are 1-based. Bind
// errors are remembered and reported by the next Step().
class Stmt {
 public:
  Stmt(Stmt&& other) noexcept;
  Stmt& operator=(Stmt&&) = delete;
  Stmt(const Stmt&) = delete;
  ~Stmt();

  Stmt& BindInt(int i, int64_t v);
  Stmt& BindDouble(int i, double v);
  Stmt& BindText(int i, absl::string_view v);
  Stmt& BindBlob(int i, absl::string_view v);
  Stmt& BindNull(int i);
  // NULL when `v` is empty.
  Stmt& BindTextOrNull(int i, absl::string_view v);
  // Unix microseconds.
  Stmt& BindTime(int i, absl::Time t);
  // NULL when `t` is kUnsetTime.
  Stmt& BindTimeOrNull(int i, absl::Time t);

  // Advances; true when a row is available.
  absl::StatusOr<bool> Step();
  // Steps until done (rows, if any, are ignored).
  absl::Status Run();

  bool IsNull(int col) const;
  int64_t ColumnInt(int col) const;
  double ColumnDouble(int col) const;
  std::string ColumnText(int col) const;
  std::string ColumnBlob(int col) const;
  // NULL -> kUnsetTime.
  absl::Time ColumnTime(int col) const;

 private:
  friend class Connection;
  Stmt(Connection* conn, sqlite3_stmt* stmt) : conn_(conn), stmt_(stmt) {}
  void NoteBind(int rc, int i);

  Connection* conn_;
  sqlite3_stmt* stmt_;
  int bind_rc_ = 0;
  int bind_index_ = 0;
};

class Connection {
 public:
  struct Options {
    std::string path;
    bool create = true;
    absl::Duration busy_timeout = absl::Seconds(5);
    // "NORMAL" or "FULL".
    std::string synchronous = "NORMAL";
    // Switch the database to WAL (done by the writer; readers inherit the persistent mode).
    bool wal = true;
    // PRAGMA query_only: reader connections can never write by mistake.
    bool query_only = false;
    // SQLITE_LIMIT_LENGTH: largest string/blob the connection accepts.
    int max_value_bytes = 64 << 20;
    // Page cache of this connection in KiB (PRAGMA cache_size=-N); 0 = SQLite's 2 MiB. The
    // writer gets a larger one: batched inserts touch many index pages per transaction.
    int cache_kib = 0;
  };

  static absl::StatusOr<std::unique_ptr<Connection>> Open(const Options& options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs a script (no parameters, results ignored).
  absl::Status Exec(absl::string_view sql);
  // Checks out the cached statement for `sql`, preparing it on first use. The same `sql` must
  // not be checked out twice at once.
  absl::StatusOr<Stmt> Prepare(absl::string_view sql);
  // Rows changed by the last INSERT/UPDATE/DELETE.
  int64_t Changes() const;

  // Runs `fn` inside BEGIN IMMEDIATE ... COMMIT, rolling back when `fn` or COMMIT fails.
  // BEGIN IMMEDIATE takes the write lock up front, so busy_timeout applies (a deferred
  // transaction upgrading from read to write fails at once with SQLITE_BUSY).
  absl::Status WriteTransaction(absl::FunctionRef<absl::Status()> fn);

  sqlite3* raw() const { return db_; }
  const std::string& path() const { return path_; }

 private:
  Connection(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

  sqlite3* db_;
  std::string path_;
  absl::flat_hash_map<std::string, sqlite3_stmt*> cache_;
};

}  // namespace elexirion::store::sqlite
