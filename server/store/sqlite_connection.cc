#include "server/store/sqlite_connection.h"

#include <sqlite3.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"
#include "server/store/records.h"

namespace elexirion::store::sqlite {

absl::Status SqliteError(int rc, sqlite3* db, absl::string_view context) {
  const char* msg = (db != nullptr && sqlite3_extended_errcode(db) == rc) ? sqlite3_errmsg(db)
                                                                          : sqlite3_errstr(rc);
  std::string text = absl::StrCat("sqlite: ", context, ": ", msg, " (code ", rc, ")");
  switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
      return absl::AlreadyExistsError(text);
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      return absl::FailedPreconditionError(text);
    default:
      break;
  }
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_PROTOCOL:
      return absl::UnavailableError(text);
    case SQLITE_CONSTRAINT:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
    case SQLITE_MISMATCH:
      return absl::InvalidArgumentError(text);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(text);
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return absl::ResourceExhaustedError(text);
    case SQLITE_INTERRUPT:
      return absl::CancelledError(text);
    default:
      return absl::InternalError(text);
  }
}

// ---------------------------------------------------------------------------------------
// Stmt

Stmt::Stmt(Stmt&& other) noexcept
    : conn_(other.conn_),
      stmt_(std::exchange(other.stmt_, nullptr)),
      bind_rc_(other.bind_rc_),
      bind_index_(other.bind_index_) {}

Stmt::~Stmt() {
  if (stmt_ == nullptr) return;
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

void Stmt::NoteBind(int rc, int i) {
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) {
    bind_rc_ = rc;
    bind_index_ = i;
  }
}

Stmt& Stmt::BindInt(int i, int64_t v) {
  NoteBind(sqlite3_bind_int64(stmt_, i, v), i);
  return *this;
}
Stmt& Stmt::BindDouble(int i, double v) {
  NoteBind(sqlite3_bind_double(stmt_, i, v), i);
  return *this;
}
Stmt& Stmt::BindText(int i, absl::string_view v) {
  NoteBind(sqlite3_bind_text64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8), i);
  return *this;
}
Stmt& Stmt::BindBlob(int i, absl::string_view v) {
  // A zero-length blob with a null pointer would bind NULL; "" keeps it a blob.
  NoteBind(sqlite3_bind_blob64(stmt_, i, v.empty() ? "" : v.data(), v.size(), SQLITE_TRANSIENT), i);
  return *this;
}
Stmt& Stmt::BindNull(int i) {
  NoteBind(sqlite3_bind_null(stmt_, i), i);
  return *this;
}
Stmt& Stmt::BindTextOrNull(int i, absl::string_view v) {
  return v.empty() ? BindNull(i) : BindText(i, v);
}
Stmt& Stmt::BindTime(int i, absl::Time t) { return BindInt(i, absl::ToUnixMicros(t)); }
Stmt& Stmt::BindTimeOrNull(int i, absl::Time t) {
  return t == kUnsetTime ? BindNull(i) : BindTime(i, t);
}

absl::StatusOr<bool> Stmt::Step() {
  if (bind_rc_ != SQLITE_OK) {
    return SqliteError(bind_rc_, conn_->raw(), absl::StrCat("bind parameter ", bind_index_));
  }
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(rc, conn_->raw(), "step");
}

absl::Status Stmt::Run() {
  while (true) {
    ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return absl::OkStatus();
  }
}

bool Stmt::IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
int64_t Stmt::ColumnInt(int col) const { return sqlite3_column_int64(stmt_, col); }
double Stmt::ColumnDouble(int col) const { return sqlite3_column_double(stmt_, col); }
std::string Stmt::ColumnText(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  if (p == nullptr) return std::string();
  return std::string(reinterpret_cast<const char*>(p),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}
std::string Stmt::ColumnBlob(int col) const {
  const void* p = sqlite3_column_blob(stmt_, col);
  if (p == nullptr) return std::string();
  return std::string(static_cast<const char*>(p),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}
absl::Time Stmt::ColumnTime(int col) const {
  if (IsNull(col)) return kUnsetTime;
  return absl::FromUnixMicros(ColumnInt(col));
}

// ---------------------------------------------------------------------------------------
// Connection

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(const Options& options) {
  sqlite3* db = nullptr;
  // NOMUTEX: the owner serializes each connection, so SQLite's own per-connection mutex is
  // redundant.
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  if (options.create) flags |= SQLITE_OPEN_CREATE;
  int rc = sqlite3_open_v2(options.path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status status = SqliteError(rc, db, absl::StrCat("open ", options.path));
    sqlite3_close_v2(db);
    return status;
  }
  std::unique_ptr<Connection> conn(new Connection(db, options.path));
  sqlite3_extended_result_codes(db, 1);
  sqlite3_limit(db, SQLITE_LIMIT_LENGTH, options.max_value_bytes);
  sqlite3_busy_timeout(db, static_cast<int>(absl::ToInt64Milliseconds(options.busy_timeout)));
  if (options.wal) {
    // Answers the mode now in effect: "wal", or "memory" for an in-memory database.
    ASSIGN_OR_RETURN(Stmt stmt, conn->Prepare("PRAGMA journal_mode=WAL"));
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    std::string mode = row ? stmt.ColumnText(0) : "";
    if (mode != "wal" && mode != "memory") {
      return absl::FailedPreconditionError(
          absl::StrCat("sqlite: ", options.path, ": cannot enable WAL (journal_mode=", mode, ")"));
    }
  }
  if (options.synchronous != "NORMAL" && options.synchronous != "FULL") {
    return absl::InvalidArgumentError("synchronous must be NORMAL or FULL");
  }
  RETURN_IF_ERROR(conn->Exec(absl::StrCat("PRAGMA synchronous=", options.synchronous)));
  RETURN_IF_ERROR(conn->Exec("PRAGMA foreign_keys=ON"));
  if (options.cache_kib > 0) {
    RETURN_IF_ERROR(conn->Exec(absl::StrCat("PRAGMA cache_size=-", options.cache_kib)));
  }
  if (options.query_only) RETURN_IF_ERROR(conn->Exec("PRAGMA query_only=1"));
  return conn;
}

Connection::~Connection() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  cache_.clear();
  sqlite3_close_v2(db_);
}

absl::Status Connection::Exec(absl::string_view sql) {
  std::string script(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, script.c_str(), nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) return SqliteError(rc, db_, "exec");
  return absl::OkStatus();
}

absl::StatusOr<Stmt> Connection::Prepare(absl::string_view sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) return SqliteError(rc, db_, absl::StrCat("prepare ", sql.substr(0, 60)));
    it = cache_.emplace(std::string(sql), stmt).first;
  }
  return Stmt(this, it->second);
}

int64_t Connection::Changes() const { return sqlite3_changes64(db_); }

absl::Status Connection::WriteTransaction(absl::FunctionRef<absl::Status()> fn) {
  {
    ASSIGN_OR_RETURN(Stmt begin, Prepare("BEGIN IMMEDIATE"));
    RETURN_IF_ERROR(begin.Run());
  }
  absl::Status status = fn();
  if (status.ok()) {
    ASSIGN_OR_RETURN(Stmt commit, Prepare("COMMIT"));
    status = commit.Run();
    if (status.ok()) return status;
  }
  // Always safe: a no-op error if SQLite already rolled back on its own.
  if (!sqlite3_get_autocommit(db_)) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  return status;
}

}  // namespace elexirion::store::sqlite
