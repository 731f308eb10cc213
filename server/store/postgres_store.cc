#include "server/store/postgres_store.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/common/status_macros.h"
#include "server/store/postgres_connection.h"
#include "server/store/postgres_schema.h"
#include "server/store/store_util.h"

namespace elexirion::store {

namespace {
// Serialization failures and deadlocks are retried this many times in all.
constexpr int kMaxAttempts = 5;
}  // namespace

absl::StatusOr<std::unique_ptr<PostgresStore>> PostgresStore::Create(Options options) {
  if (options.dsn.empty()) return absl::InvalidArgumentError("PostgreSQL DSN is empty");
  if (options.pool_size < 1) return absl::InvalidArgumentError("pool_size must be >= 1");
  if (options.clock == nullptr) options.clock = Clock::Real();
  pg::ConnectionPool::Options pool_options;
  pool_options.dsn = options.dsn;
  pool_options.size = options.pool_size;
  pool_options.connect_timeout = options.connect_timeout;
  ASSIGN_OR_RETURN(std::unique_ptr<pg::ConnectionPool> pool,
                   pg::ConnectionPool::Create(std::move(pool_options)));
  {
    ASSIGN_OR_RETURN(pg::ConnectionPool::Lease conn, pool->Acquire());
    if (!options.migrate) {
      ASSIGN_OR_RETURN(const int version, pg::SchemaVersion(*conn));
      RETURN_IF_ERROR(CheckSchemaVersion(absl::StrCat("PostgreSQL database ",
                                                      pool->redacted_dsn()),
                                         version,
                                         static_cast<int>(pg::SchemaMigrations().size())));
    }
    absl::Status migrated = pg::Migrate(*conn, pg::SchemaMigrations(), options.clock->Now());
    if (!migrated.ok()) {
      return absl::Status(migrated.code(), pg::RedactPassword(options.dsn, migrated.message()));
    }
  }
  return std::unique_ptr<PostgresStore>(new PostgresStore(std::move(options), std::move(pool)));
}

PostgresStore::PostgresStore(Options options, std::unique_ptr<pg::ConnectionPool> pool)
    : options_(std::move(options)), pool_(std::move(pool)) {}

PostgresStore::~PostgresStore() = default;

absl::Status PostgresStore::Write(TxFn fn) { return Run(Mode::kTransaction, fn); }
absl::Status PostgresStore::Read(TxFn fn) { return Run(Mode::kRead, fn); }
absl::Status PostgresStore::WriteOne(TxFn fn) { return Run(Mode::kAutocommit, fn); }

absl::Status PostgresStore::Run(Mode mode, TxFn fn) {
  const bool transaction = mode == Mode::kTransaction;
  absl::Status last;
  bool reconnected = false;
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    ASSIGN_OR_RETURN(pg::ConnectionPool::Lease conn, pool_->Acquire());
    bool committing = false;
    try {
      absl::Status status;
      if (transaction) {
        pqxx::work txn(conn->raw());
        pg::Tx tx(*conn, txn);
        status = fn(tx);
        if (status.ok()) {
          committing = true;
          txn.commit();
        }
        // Otherwise the destructor rolls back.
      } else {
        pqxx::nontransaction txn(conn->raw());
        pg::Tx tx(*conn, txn);
        status = fn(tx);
      }
      return status;
    } catch (const std::exception& e) {
      last = pg::PgErrorStatus(e, "PostgreSQL");
      if (pg::IsConnectionError(e) || dynamic_cast<const pqxx::in_doubt_error*>(&e)) {
        conn.Discard();
        // The connection may have died while idle (e.g. the server restarted): one more try
        // on a fresh connection, unless the failure hit COMMIT (the outcome is unknown) or
        // the connection was new anyway.
        if (committing || mode == Mode::kAutocommit || !conn.reused() || reconnected) break;
        reconnected = true;
        continue;
      }
      if (!pg::IsRetryableConflict(e)) break;
      absl::SleepFor(absl::Milliseconds(2 << attempt));
    }
  }
  return absl::Status(last.code(), pg::RedactPassword(options_.dsn, last.message()));
}

absl::StatusOr<int> PostgresStore::SchemaVersion() {
  ASSIGN_OR_RETURN(pg::ConnectionPool::Lease conn, pool_->Acquire());
  absl::StatusOr<int> version = pg::SchemaVersion(*conn);
  if (absl::IsUnavailable(version.status())) conn.Discard();
  return version;
}

absl::Status PostgresStore::Ping() {
  return Read([](pg::Tx& tx) -> absl::Status {
    tx.Exec("SELECT count(*) FROM schema_migrations");
    return absl::OkStatus();
  });
}

absl::Status PostgresStore::IntegrityCheck() {
  // PostgreSQL checks its own pages (checksums, WAL); what can drift is the store's own
  // bookkeeping, so that is what is checked: cached counters and per-job event sequences.
  std::vector<std::string> problems;
  RETURN_IF_ERROR(Read([&](pg::Tx& tx) -> absl::Status {
    problems.clear();
    pqxx::result counts = tx.Exec(
        "SELECT d.name, d.example_count, count(e.seq) FROM datasets d LEFT JOIN examples e ON "
        "e.dataset = d.name GROUP BY d.name, d.example_count HAVING d.example_count <> "
        "count(e.seq) LIMIT 20");
    for (const auto& row : counts) {
      problems.push_back(absl::StrCat("dataset ", row[0].c_str(), " counts ", row[1].c_str(),
                                      " examples but holds ", row[2].c_str()));
    }
    // No foreign key holds examples to their dataset since schema 3: the writers' dataset
    // lock and the delete trigger do, and this checks them.
    pqxx::result orphans = tx.Exec(
        "SELECT e.dataset, count(*) FROM examples e WHERE NOT EXISTS (SELECT 1 FROM datasets "
        "d WHERE d.name = e.dataset) GROUP BY e.dataset LIMIT 20");
    for (const auto& row : orphans) {
      problems.push_back(absl::StrCat("dataset ", row[0].c_str(), " does not exist but ",
                                      row[1].c_str(), " examples name it"));
    }
    pqxx::result seqs = tx.Exec(
        "SELECT j.id, j.last_event_seq, max(e.seq) FROM jobs j JOIN job_events e ON "
        "e.job_id = j.id GROUP BY j.id, j.last_event_seq HAVING max(e.seq) > j.last_event_seq "
        "LIMIT 20");
    for (const auto& row : seqs) {
      problems.push_back(absl::StrCat("job ", row[0].c_str(), " has event ", row[2].c_str(),
                                      " beyond last_event_seq ", row[1].c_str()));
    }
    return absl::OkStatus();
  }));
  if (problems.empty()) return absl::OkStatus();
  return absl::DataLossError(absl::StrCat("integrity check of PostgreSQL database ",
                                          pool_->redacted_dsn(),
                                          " failed: ", absl::StrJoin(problems, "; ")));
}

}  // namespace elexirion::store
