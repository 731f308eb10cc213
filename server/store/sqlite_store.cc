#include "server/store/sqlite_store.h"

#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/common/status_macros.h"
#include "server/store/sqlite_connection.h"
#include "server/store/sqlite_schema.h"
#include "server/store/store_util.h"

namespace elexirion::store {

absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Create(Options options) {
  if (options.path == ":memory:") options.in_memory = true;
  if (options.in_memory) {
    options.path = ":memory:";
    options.reader_connections = 0;  // every connection would be a separate database
  }
  if (options.path.empty()) return absl::InvalidArgumentError("store path is empty");
  if (options.reader_connections < 0) {
    return absl::InvalidArgumentError("reader_connections must be >= 0");
  }
  if (options.clock == nullptr) options.clock = Clock::Real();
  if (!options.migrate && !options.in_memory && !std::filesystem::exists(options.path)) {
    return absl::FailedPreconditionError(absl::StrCat("no SQLite database at ", options.path));
  }
  if (!options.in_memory) {
    std::filesystem::path parent = std::filesystem::path(options.path).parent_path();
    if (!parent.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(parent, ec);
      if (ec) {
        return absl::UnavailableError(
            absl::StrCat("cannot create directory ", parent.string(), ": ", ec.message()));
      }
    }
  }

  sqlite::Connection::Options conn_options;
  conn_options.path = options.path;
  conn_options.busy_timeout = options.busy_timeout;
  conn_options.synchronous = options.durability == Durability::kFull ? "FULL" : "NORMAL";
  conn_options.max_value_bytes = options.max_value_bytes;
  conn_options.cache_kib = 32 << 10;
  ASSIGN_OR_RETURN(std::unique_ptr<sqlite::Connection> writer,
                   sqlite::Connection::Open(conn_options));
  if (!options.migrate) {
    ASSIGN_OR_RETURN(const int version, sqlite::SchemaVersion(*writer));
    RETURN_IF_ERROR(CheckSchemaVersion(absl::StrCat("SQLite database ", options.path), version,
                                       static_cast<int>(sqlite::SchemaMigrations().size())));
  }
  RETURN_IF_ERROR(sqlite::Migrate(*writer, sqlite::SchemaMigrations(), options.clock->Now()));

  std::vector<std::unique_ptr<sqlite::Connection>> readers;
  conn_options.create = false;
  conn_options.wal = false;  // persistent: already set by the writer
  conn_options.query_only = true;
  conn_options.cache_kib = 0;
  for (int i = 0; i < options.reader_connections; ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<sqlite::Connection> reader,
                     sqlite::Connection::Open(conn_options));
    readers.push_back(std::move(reader));
  }
  std::unique_ptr<sqlite::Connection> checkpoint_conn;
  if (!options.in_memory && options.checkpoint_interval > absl::ZeroDuration()) {
    // 20,000 pages (about 80 MB of WAL) before a commit checkpoints by itself.
    RETURN_IF_ERROR(writer->Exec("PRAGMA wal_autocheckpoint=20000"));
    conn_options.query_only = false;  // a checkpoint writes the database file
    ASSIGN_OR_RETURN(checkpoint_conn, sqlite::Connection::Open(conn_options));
  }
  std::unique_ptr<SqliteStore> store(
      new SqliteStore(std::move(options), std::move(writer), std::move(readers)));
  if (checkpoint_conn != nullptr) {
    store->checkpoint_conn_ = std::move(checkpoint_conn);
    store->checkpointer_ = std::thread([s = store.get()] { s->CheckpointLoop(); });
  }
  return store;
}

void SqliteStore::CheckpointLoop() {
  while (true) {
    {
      absl::MutexLock lock(&checkpoint_mu_);
      if (checkpoint_mu_.AwaitWithTimeout(absl::Condition(&stopping_),
                                          options_.checkpoint_interval)) {
        return;
      }
    }
    // PASSIVE copies what it can without waiting for (or blocking) the writer or readers;
    // the writer then restarts the WAL from the top once everything was copied.
    (void)checkpoint_conn_->Exec("PRAGMA wal_checkpoint(PASSIVE)");
  }
}

SqliteStore::SqliteStore(Options options, std::unique_ptr<sqlite::Connection> writer,
                         std::vector<std::unique_ptr<sqlite::Connection>> readers)
    : options_(std::move(options)), writer_(std::move(writer)), readers_(std::move(readers)) {
  for (const auto& r : readers_) free_readers_.push_back(r.get());
}

SqliteStore::~SqliteStore() {
  {
    absl::MutexLock lock(&checkpoint_mu_);
    stopping_ = true;
  }
  if (checkpointer_.joinable()) checkpointer_.join();
}

absl::Status SqliteStore::Write(ConnFn fn) {
  absl::MutexLock lock(&writer_mu_);
  sqlite::Connection& conn = *writer_;
  return conn.WriteTransaction([&] { return fn(conn); });
}

absl::Status SqliteStore::Read(ConnFn fn) {
  if (readers_.empty()) {
    absl::MutexLock lock(&writer_mu_);
    return fn(*writer_);
  }
  sqlite::Connection* conn = nullptr;
  {
    absl::MutexLock lock(&pool_mu_);
    pool_mu_.Await(absl::Condition(
        +[](std::vector<sqlite::Connection*>* free) { return !free->empty(); }, &free_readers_));
    conn = free_readers_.back();
    free_readers_.pop_back();
  }
  absl::Status status = fn(*conn);
  absl::MutexLock lock(&pool_mu_);
  free_readers_.push_back(conn);
  return status;
}

absl::StatusOr<int> SqliteStore::SchemaVersion() {
  int version = 0;
  RETURN_IF_ERROR(Read([&](sqlite::Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(version, sqlite::SchemaVersion(c));
    return absl::OkStatus();
  }));
  return version;
}

absl::Status SqliteStore::Ping() {
  return Read([](sqlite::Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(sqlite::Stmt stmt, c.Prepare("SELECT count(*) FROM schema_migrations"));
    return stmt.Run();
  });
}

absl::Status SqliteStore::IntegrityCheck() {
  std::vector<std::string> problems;
  RETURN_IF_ERROR(Read([&](sqlite::Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(sqlite::Stmt stmt, c.Prepare("PRAGMA integrity_check(20)"));
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      std::string line = stmt.ColumnText(0);
      if (line != "ok") problems.push_back(std::move(line));
    }
    ASSIGN_OR_RETURN(sqlite::Stmt fk, c.Prepare("PRAGMA foreign_key_check"));
    while (true) {
      ASSIGN_OR_RETURN(bool row, fk.Step());
      if (!row) break;
      problems.push_back(
          absl::StrCat("foreign key violation in ", fk.ColumnText(0), " row ", fk.ColumnInt(1)));
      if (problems.size() >= 20) break;
    }
    return absl::OkStatus();
  }));
  if (problems.empty()) return absl::OkStatus();
  return absl::DataLossError(absl::StrCat("integrity check of ", options_.path,
                                          " failed: ", absl::StrJoin(problems, "; ")));
}

}  // namespace elexirion::store
