// SQLite store: the conformance suite on real files, plus what only SQLite has (schema migrations,
// WAL and busy handling, error mapping, crash consistency across processes).
#include "server/store/sqlite_store.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/store/sqlite_connection.h"
#include "server/store/sqlite_schema.h"
#include "tests/store/store_conformance.h"

namespace elexirion::store {
namespace {

using storetest::StoreBackend;
using storetest::StoreFactory;
using ::testing::HasSubstr;

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

// A fresh directory under $TEST_TMPDIR / $TMPDIR / /tmp, removed with the object.
class TempDir {
 public:
  TempDir() {
    const char *base = getenv("TEST_TMPDIR");
    if (base == nullptr) base = getenv("TMPDIR");
    std::string tmpl = absl::StrCat(base != nullptr ? base : "/tmp", "/elexirion-store-XXXXXX");
    char *made = mkdtemp(tmpl.data());
    EXPECT_NE(made, nullptr) << "mkdtemp " << tmpl;
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string File(const std::string &name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

absl::StatusOr<std::unique_ptr<SqliteStore>> Open(const std::string &path,
                                                  SqliteStore::Options options = {}) {
  options.path = path;
  return SqliteStore::Create(std::move(options));
}

// The conformance suite on a real file in a nested (not yet existing) directory.
StoreBackend SqliteFileBackend() {
  return {"SqliteFile", [] {
            auto dir = std::make_shared<TempDir>();
            const std::string path = dir->File("nested/dir/store.db");
            return StoreFactory([dir, path]() -> std::unique_ptr<Store> {
              auto store = Open(path);
              if (!store.ok()) {
                ADD_FAILURE() << store.status();
                return nullptr;
              }
              return *std::move(store);
            });
          }};
}

ELEXIRION_INSTANTIATE_STORE_CONFORMANCE(Sqlite, SqliteFileBackend());

// Runs one SQL statement on a separate raw connection (what another tool or process does).
void RawExec(const std::string &path, const std::string &sql) {
  sqlite3 *db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char *err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << sql << ": " << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

std::string RawQueryText(const std::string &path, const std::string &sql) {
  sqlite3 *db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt *stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK) << sql;
  std::string out;
  if (stmt != nullptr && sqlite3_step(stmt) == SQLITE_ROW) {
    const unsigned char *text = sqlite3_column_text(stmt, 0);
    if (text != nullptr) out = reinterpret_cast<const char *>(text);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

JobRecord NewJob() {
  JobRecord job;
  job.program_name = "prog";
  job.created_at = kT0;
  return job;
}

// ---------------------------------------------------------------------------------------
// Opening, schema and pragmas

TEST(SqliteStoreTest, CreatesParentDirectoriesAndUsesWal) {
  TempDir dir;
  const std::string path = dir.File("a/b/c/store.db");
  {
    auto store = Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_TRUE((*store)->Ping().ok());
  }
  EXPECT_TRUE(std::filesystem::exists(path));
  EXPECT_EQ(RawQueryText(path, "PRAGMA journal_mode"), "wal");
}

TEST(SqliteStoreTest, RecordsMigrationsOnceAndReopensWithoutReapplying) {
  TempDir dir;
  const std::string path = dir.File("store.db");
  const int known = static_cast<int>(sqlite::SchemaMigrations().size());
  for (int i = 0; i < 3; ++i) {
    auto store = Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    auto version = (*store)->SchemaVersion();
    ASSERT_TRUE(version.ok()) << version.status();
    EXPECT_EQ(*version, known);
  }
  EXPECT_EQ(RawQueryText(path, "SELECT count(*) FROM schema_migrations"), absl::StrCat(known));
}

TEST(SqliteStoreTest, NewerSchemaVersionRefusesToOpen) {
  TempDir dir;
  const std::string path = dir.File("store.db");
  {
    auto store = Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->CreateJob(NewJob()).ok());
  }
  RawExec(path,
          "INSERT INTO schema_migrations (version, description, applied_at) "
          "VALUES (999, 'from the future', 0)");
  auto store = Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("schema version 999"));
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("newer"));
  // Nothing was touched.
  EXPECT_EQ(RawQueryText(path, "SELECT count(*) FROM jobs"), "1");
}

TEST(SqliteStoreTest, FailedMigrationRollsBackAndKeepsEarlierOnes) {
  TempDir dir;
  sqlite::Connection::Options options;
  options.path = dir.File("m.db");
  auto conn = sqlite::Connection::Open(options);
  ASSERT_TRUE(conn.ok()) << conn.status();
  sqlite::Connection &db = **conn;

  const std::vector<sqlite::Migration> broken = {
      {1, "one", "CREATE TABLE a (x INTEGER);"},
      {2, "two", "CREATE TABLE b (x INTEGER); INSERT INTO no_such_table VALUES (1);"},
  };
  absl::Status status = sqlite::Migrate(db, broken, kT0);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr("schema migration 2 (two)"));
  auto version = sqlite::SchemaVersion(db);
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(*version, 1);
  EXPECT_EQ(RawQueryText(options.path, "SELECT count(*) FROM sqlite_master WHERE name = 'b'"), "0");

  const std::vector<sqlite::Migration> fixed = {
      {1, "one", "CREATE TABLE a (x INTEGER);"},
      {2, "two", "CREATE TABLE b (x INTEGER);"},
  };
  ASSERT_TRUE(sqlite::Migrate(db, fixed, kT0).ok());
  version = sqlite::SchemaVersion(db);
  EXPECT_EQ(*version, 2);
  // An older binary (knows only migration 1) refuses.
  EXPECT_EQ(sqlite::Migrate(db, {fixed[0]}, kT0).code(), absl::StatusCode::kFailedPrecondition);
  // A malformed list is a programming error.
  EXPECT_EQ(sqlite::Migrate(db, {fixed[1]}, kT0).code(), absl::StatusCode::kInternal);
}

TEST(SqliteStoreTest, InMemoryStores) {
  for (SqliteStore::Options options :
       {SqliteStore::Options{.path = ":memory:"}, SqliteStore::Options{.in_memory = true}}) {
    auto store = SqliteStore::Create(options);
    ASSERT_TRUE(store.ok()) << store.status();
    auto job = (*store)->CreateJob(NewJob());
    ASSERT_TRUE(job.ok()) << job.status();
    auto claimed = (*store)->ClaimJob("w", absl::Minutes(1), kT0);
    ASSERT_TRUE(claimed.ok()) << claimed.status();
    ASSERT_TRUE(claimed->has_value());
    EXPECT_EQ((*claimed)->id, job->id);
    EXPECT_TRUE((*store)->IntegrityCheck().ok());
  }
}

TEST(SqliteStoreTest, FullDurabilityAndNoReaderPool) {
  TempDir dir;
  SqliteStore::Options options;
  options.durability = SqliteStore::Durability::kFull;
  options.reader_connections = 0;
  auto store = Open(dir.File("full.db"), options);
  ASSERT_TRUE(store.ok()) << store.status();
  auto job = (*store)->CreateJob(NewJob());
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_TRUE((*store)->GetJob(job->id).ok());
  EXPECT_EQ(SqliteStore::Create({}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Open(dir.File("x.db"), {.reader_connections = -1}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------
// Errors

TEST(SqliteStoreTest, ErrorCodesMapToStatus) {
  using absl::StatusCode;
  const std::vector<std::pair<int, StatusCode>> cases = {
      {SQLITE_BUSY, StatusCode::kUnavailable},
      {SQLITE_BUSY_SNAPSHOT, StatusCode::kUnavailable},
      {SQLITE_LOCKED, StatusCode::kUnavailable},
      {SQLITE_CONSTRAINT_UNIQUE, StatusCode::kAlreadyExists},
      {SQLITE_CONSTRAINT_PRIMARYKEY, StatusCode::kAlreadyExists},
      {SQLITE_CONSTRAINT_FOREIGNKEY, StatusCode::kFailedPrecondition},
      {SQLITE_CONSTRAINT_NOTNULL, StatusCode::kInvalidArgument},
      {SQLITE_CONSTRAINT_CHECK, StatusCode::kInvalidArgument},
      {SQLITE_TOOBIG, StatusCode::kInvalidArgument},
      {SQLITE_CORRUPT, StatusCode::kDataLoss},
      {SQLITE_NOTADB, StatusCode::kDataLoss},
      {SQLITE_FULL, StatusCode::kResourceExhausted},
      {SQLITE_NOMEM, StatusCode::kResourceExhausted},
      {SQLITE_IOERR_WRITE, StatusCode::kUnavailable},
      {SQLITE_CANTOPEN, StatusCode::kUnavailable},
      {SQLITE_READONLY, StatusCode::kUnavailable},
      {SQLITE_INTERRUPT, StatusCode::kCancelled},
      {SQLITE_MISUSE, StatusCode::kInternal},
  };
  for (const auto &[rc, code] : cases) {
    absl::Status status = sqlite::SqliteError(rc, nullptr, "ctx");
    EXPECT_EQ(status.code(), code) << "rc " << rc << ": " << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr("sqlite: ctx: "));
  }
}

TEST(SqliteStoreTest, WriteLockHeldElsewhereGivesUnavailableAfterTimeout) {
  TempDir dir;
  const std::string path = dir.File("store.db");
  auto store = Open(path, {.busy_timeout = absl::Milliseconds(100)});
  ASSERT_TRUE(store.ok()) << store.status();
  auto job = (*store)->CreateJob(NewJob());
  ASSERT_TRUE(job.ok());

  // Another process holds the write lock.
  sqlite3 *other = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);

  auto blocked = (*store)->CreateJob(NewJob());
  EXPECT_EQ(blocked.status().code(), absl::StatusCode::kUnavailable) << blocked.status();
  // WAL: readers are not blocked by the writer.
  EXPECT_TRUE((*store)->GetJob(job->id).ok());
  EXPECT_TRUE((*store)->Ping().ok());

  ASSERT_EQ(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  EXPECT_TRUE((*store)->CreateJob(NewJob()).ok());
}

TEST(SqliteStoreTest, OversizedValueIsInvalidArgumentAndStoreStaysHealthy) {
  TempDir dir;
  auto store = Open(dir.File("store.db"), {.max_value_bytes = 4096});
  ASSERT_TRUE(store.ok()) << store.status();
  JobRecord big = NewJob();
  big.request = std::string(10000, 'x');
  auto created = (*store)->CreateJob(big);
  EXPECT_EQ(created.status().code(), absl::StatusCode::kInvalidArgument) << created.status();
  EXPECT_TRUE((*store)->CreateJob(NewJob()).ok());

  // In a batch only the oversized row is rejected.
  ExecutionRecordRow ok_row;
  ok_row.pipeline_name = "p";
  ExecutionRecordRow big_row = ok_row;
  big_row.input_json = std::string(10000, 'y');
  auto results = (*store)->InsertExecutions({ok_row, big_row, ok_row});
  ASSERT_TRUE(results.ok()) << results.status();
  EXPECT_TRUE((*results)[0].status.ok());
  EXPECT_EQ((*results)[1].status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE((*results)[2].status.ok());
  EXPECT_TRUE((*store)->IntegrityCheck().ok());
}

TEST(SqliteStoreTest, NotADatabaseIsDataLoss) {
  TempDir dir;
  const std::string path = dir.File("garbage.db");
  {
    std::ofstream out(path, std::ios::binary);
    for (int i = 0; i < 1000; ++i) out << "this is not an sqlite database. ";
  }
  auto store = Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
}

TEST(SqliteStoreTest, CorruptedPagesAreReportedAsDataLoss) {
  TempDir dir;
  const std::string path = dir.File("store.db");
  {
    auto store = Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    std::vector<ExecutionRecordRow> rows(2000);
    for (size_t i = 0; i < rows.size(); ++i) {
      rows[i].pipeline_name = "p";
      rows[i].input_json = std::string(200, 'a' + i % 26);
    }
    ASSERT_TRUE((*store)->InsertExecutions(rows).ok());
  }  // closing checkpoints the WAL into the main file
  const auto size = std::filesystem::file_size(path);
  ASSERT_GT(size, 40u * 4096u);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    std::mt19937 rng(42);
    for (uint64_t off = 8 * 4096; off + 4096 < size; off += 4096 * 3) {
      f.seekp(static_cast<std::streamoff>(off + 100));
      for (int i = 0; i < 512; ++i) f.put(static_cast<char>(rng()));
    }
  }
  auto store = Open(path);
  if (!store.ok()) {
    EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
    return;
  }
  absl::Status check = (*store)->IntegrityCheck();
  EXPECT_EQ(check.code(), absl::StatusCode::kDataLoss) << check;
}

// ---------------------------------------------------------------------------------------
// Several processes on one file. The parent never holds an open connection across fork(): SQLite's
// per-process lock bookkeeping must not be inherited by a child that opens the file.

// Reads everything from `fd` until EOF.
std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  while (true) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  return out;
}

TEST(SqliteStoreMultiProcessTest, ClaimsAreExclusiveAcrossProcesses) {
  TempDir dir;
  const std::string path = dir.File("store.db");
  constexpr int kJobs = 400;
  constexpr int kProcesses = 4;
  {
    auto store = Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    for (int i = 0; i < kJobs; ++i) ASSERT_TRUE((*store)->CreateJob(NewJob()).ok());
  }
  std::vector<pid_t> pids;
  std::vector<int> fds;
  for (int p = 0; p < kProcesses; ++p) {
    int pipe_fds[2];
    ASSERT_EQ(pipe(pipe_fds), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(pipe_fds[0]);
      auto store = Open(path);
      if (!store.ok()) _exit(2);
      while (true) {
        auto job = (*store)->ClaimJob(absl::StrCat("proc-", p), absl::Minutes(5), kT0);
        if (!job.ok()) _exit(3);  // e.g. a surfaced SQLITE_BUSY
        if (!job->has_value()) break;
        std::string line = (*job)->id + "\n";
        if (write(pipe_fds[1], line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
          _exit(4);
        }
      }
      _exit(0);
    }
    close(pipe_fds[1]);
    pids.push_back(pid);
    fds.push_back(pipe_fds[0]);
  }
  std::vector<std::string> claimed;
  for (int fd : fds) {
    std::string out = ReadAll(fd);
    close(fd);
    for (size_t start = 0; start < out.size();) {
      size_t nl = out.find('\n', start);
      if (nl == std::string::npos) break;
      claimed.push_back(out.substr(start, nl - start));
      start = nl + 1;
    }
  }
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  }
  EXPECT_EQ(claimed.size(), static_cast<size_t>(kJobs));
  EXPECT_EQ(std::set<std::string>(claimed.begin(), claimed.end()).size(),
            static_cast<size_t>(kJobs));
  auto store = Open(path);
  ASSERT_TRUE(store.ok());
  auto running = (*store)->CountJobs({JobState::kRunning});
  ASSERT_TRUE(running.ok());
  EXPECT_EQ(*running, kJobs);
}

// A child writes batches of executions in a loop (each batch one transaction) and reports every
// commit on a pipe; the parent SIGKILLs it at a random moment, most likely inside a transaction.
// After reopening: integrity_check ok, every batch complete or absent, and every batch reported as
// committed present.
TEST(SqliteStoreMultiProcessTest, KillDuringWriteTransactionsLeavesNoPartialRows) {
  TempDir dir;
  const std::string path = dir.File("crash.db");
  constexpr int kRounds = 20;
  constexpr int kBatchRows = 300;
  std::set<int64_t> committed;
  std::mt19937 rng(20240101);
  for (int round = 0; round < kRounds; ++round) {
    int pipe_fds[2];
    ASSERT_EQ(pipe(pipe_fds), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(pipe_fds[0]);
      auto store = Open(path);
      if (!store.ok()) _exit(2);
      for (int64_t b = 0; b < 100000; ++b) {
        const int64_t batch = round * 100000 + b;
        std::vector<ExecutionRecordRow> rows(kBatchRows);
        for (int i = 0; i < kBatchRows; ++i) {
          rows[i].pipeline_name = "crash";
          rows[i].program_version = batch;
          rows[i].record_id = absl::StrCat(batch, "-", i);
          rows[i].input_json = std::string(100, 'x');
          rows[i].time = kT0 + absl::Seconds(batch);
        }
        auto results = (*store)->InsertExecutions(rows);
        if (!results.ok()) _exit(3);
        for (const auto &r : *results) {
          if (!r.status.ok() || r.duplicate) _exit(5);
        }
        if (write(pipe_fds[1], &batch, sizeof(batch)) != sizeof(batch)) _exit(4);
      }
      _exit(0);
    }
    close(pipe_fds[1]);
    // Wait for a couple of commits, then kill at a random point of the loop.
    int64_t batch = 0;
    for (int i = 0; i < 2; ++i) {
      ASSERT_EQ(read(pipe_fds[0], &batch, sizeof(batch)), static_cast<ssize_t>(sizeof(batch)));
      committed.insert(batch);
    }
    usleep(std::uniform_int_distribution<int>(0, 20000)(rng));
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child status " << status;
    std::string rest = ReadAll(pipe_fds[0]);
    close(pipe_fds[0]);
    for (size_t off = 0; off + sizeof(batch) <= rest.size(); off += sizeof(batch)) {
      memcpy(&batch, rest.data() + off, sizeof(batch));
      committed.insert(batch);
    }
  }

  auto store = Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE((*store)->IntegrityCheck().ok());
  auto rows =
      (*store)->ListExecutions("crash", absl::InfinitePast(), absl::InfiniteFuture(), 100'000'000);
  ASSERT_TRUE(rows.ok()) << rows.status();
  std::map<int64_t, int> per_batch;
  for (const auto &r : *rows) ++per_batch[r.program_version];
  for (const auto &[batch, count] : per_batch) {
    EXPECT_EQ(count, kBatchRows) << "partial batch " << batch;
  }
  for (int64_t batch : committed) {
    EXPECT_TRUE(per_batch.count(batch)) << "committed batch " << batch << " lost";
  }
  EXPECT_GE(per_batch.size(), committed.size());
  // The database is fully writable again.
  EXPECT_TRUE((*store)->CreateJob(NewJob()).ok());
}

}  // namespace
}  // namespace elexirion::store
