// PostgreSQL store: the conformance suite on a real PostgreSQL server this test starts
// (tests/testutil/postgres_server.h), one fresh database per test, plus what only the
// PostgreSQL store has: SKIP LOCKED claims from many connections, leases fenced across store
// instances, concurrent group-commit batches, job event notifications, migrations shared by
// replicas, bad DSNs, and a database that goes away and comes back.
#include "server/store/postgres_store.h"

#include <libpq-fe.h>
#include <poll.h>

#include <atomic>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/store/postgres_connection.h"
#include "server/store/postgres_schema.h"
#include "tests/store/store_conformance.h"
#include "tests/testutil/postgres_server.h"

namespace elexirion::store {
namespace {

using storetest::StoreBackend;
using storetest::StoreFactory;
using ::testing::HasSubstr;
using ::testing::Not;
using testutil::PostgresServer;

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);
constexpr char kPassword[] = "s3cret-pw";

// One server for the whole binary (initdb takes a second); databases are per test.
PostgresServer* Server() {
  static PostgresServer* server = [] {
    auto started = PostgresServer::Start();
    if (!started.ok()) {
      ADD_FAILURE() << "cannot start PostgreSQL: " << started.status();
      return static_cast<PostgresServer*>(nullptr);
    }
    return started->release();
  }();
  return server;
}

class ServerEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { delete Server(); }
};
const auto* const kEnvironment = ::testing::AddGlobalTestEnvironment(new ServerEnvironment);

StoreFactory OpenNewDatabase() {
  if (Server() == nullptr) return nullptr;
  absl::StatusOr<std::string> dsn = Server()->CreateDatabase();
  if (!dsn.ok()) {
    ADD_FAILURE() << dsn.status();
    return nullptr;
  }
  return [dsn = *dsn]() -> std::unique_ptr<Store> {
    PostgresStore::Options options;
    options.dsn = dsn;
    auto store = PostgresStore::Create(options);
    if (!store.ok()) {
      ADD_FAILURE() << store.status();
      return nullptr;
    }
    return *std::move(store);
  };
}

ELEXIRION_INSTANTIATE_STORE_CONFORMANCE(Postgres, (StoreBackend{"Postgres", OpenNewDatabase}));

absl::StatusOr<std::unique_ptr<PostgresStore>> Open(const std::string& dsn, int pool_size = 4) {
  PostgresStore::Options options;
  options.dsn = dsn;
  options.pool_size = pool_size;
  return PostgresStore::Create(options);
}

// A fresh database on the shared server.
std::string NewDsn() {
  if (Server() == nullptr) return "";
  auto dsn = Server()->CreateDatabase();
  EXPECT_TRUE(dsn.ok()) << dsn.status();
  return dsn.ok() ? *dsn : "";
}

// The database a NewDsn() names (its last key=value).
std::string DbName(const std::string& dsn) { return dsn.substr(dsn.rfind('=') + 1); }

// Brings a fresh database to schema `version` (not further): how older binaries left it.
absl::Status MigrateTo(const std::string& dsn, int version) {
  auto conn = pg::Connection::Open(dsn, absl::Seconds(10));
  if (!conn.ok()) return conn.status();
  const auto& all = pg::SchemaMigrations();
  const std::vector<pg::Migration> first(all.begin(), all.begin() + version);
  if (absl::Status s = pg::Migrate(**conn, first, kT0); !s.ok()) return s;
  auto at = pg::SchemaVersion(**conn);
  if (!at.ok()) return at.status();
  if (*at != version) return absl::InternalError(absl::StrCat("at schema ", *at));
  return absl::OkStatus();
}

JobRecord NewJob(int i) {
  JobRecord j;
  j.program_name = "prog";
  j.optimizer = "bootstrap_few_shot";
  j.request = "req";
  j.created_at = kT0 + absl::Milliseconds(i);
  return j;
}

// COPY escaping and the text check skip plain words 8 bytes at a time: they must agree with
// the plain byte-by-byte rules at every length and offset.
TEST(PostgresCopyTextTest, WordSkippingAgreesWithTheByteRules) {
  std::mt19937 rng(5);
  const std::vector<std::string> pieces = {"a",
                                           "Z",
                                           " ",
                                           "\\",
                                           "\t",
                                           "\n",
                                           "\r",
                                           std::string(1, '\0'),
                                           "\xc3\xa9",
                                           "\xe6\x97\xa5",
                                           "\xf0\x9f\x98\x80",
                                           "\xc3",
                                           "\xff",
                                           "\xed\xa0\x80"};
  auto naive_copy = [](const std::string& v) {
    std::string out;
    for (char c : v) {
      switch (c) {
        case '\\':
          out += "\\\\";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        default:
          out.push_back(c);
      }
    }
    return out;
  };
  for (int round = 0; round < 20000; ++round) {
    std::string text;
    const int n = static_cast<int>(rng() % 40);
    const bool plain_only = round % 3 == 0;
    for (int i = 0; i < n; ++i)
      text += plain_only ? pieces[rng() % 3] : pieces[rng() % pieces.size()];
    std::string copied;
    pg::AppendCopyField(text, copied);
    ASSERT_EQ(copied, naive_copy(text)) << absl::CEscape(text);
    // UTF-8 without NUL: the byte-wise checker's answer on the same text, via a prefix of
    // plain ASCII that shifts the text across word boundaries.
    const std::string shifted = std::string(static_cast<size_t>(rng() % 9), 'x') + text;
    EXPECT_EQ(pg::IsStorableText(shifted), pg::IsStorableText(text)) << absl::CEscape(text);
    const bool has_nul = text.find('\0') != std::string::npos;
    if (has_nul) {
      EXPECT_FALSE(pg::IsStorableText(text));
    }
    if (plain_only) {
      EXPECT_TRUE(pg::IsStorableText(text));
    }
  }
  EXPECT_TRUE(pg::IsStorableText("caf\xc3\xa9 \xf0\x9f\x98\x80 long enough to span words"));
  EXPECT_FALSE(pg::IsStorableText("long enough to span several words \xc3"));
  EXPECT_FALSE(pg::IsStorableText(std::string("eight b\0ytes and more", 22)));
}

TEST(PostgresStoreTest, SkipLockedClaimsGiveEachJobToExactlyOneOfManyClaimers) {
  const std::string dsn = NewDsn();
  auto setup = Open(dsn);
  ASSERT_TRUE(setup.ok()) << setup.status();
  constexpr int kJobs = 300;
  for (int i = 0; i < kJobs; ++i) ASSERT_TRUE((*setup)->CreateJob(NewJob(i)).ok());

  // Four store instances (think: replicas), two claiming threads each, all on one database.
  constexpr int kStores = 4;
  std::vector<std::unique_ptr<PostgresStore>> stores;
  for (int s = 0; s < kStores; ++s) {
    auto store = Open(dsn, 2);
    ASSERT_TRUE(store.ok()) << store.status();
    stores.push_back(*std::move(store));
  }
  absl::Mutex mu;
  std::map<std::string, int> claims;
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kStores * 2; ++t) {
    threads.emplace_back([&, t] {
      PostgresStore& store = *stores[t % kStores];
      const std::string worker = absl::StrCat("worker-", t);
      while (true) {
        auto job = store.ClaimJob(worker, absl::Minutes(5), kT0 + absl::Hours(1));
        if (!job.ok()) {
          ++errors;
          return;
        }
        if (!job->has_value()) return;
        EXPECT_EQ((*job)->attempt, 1);
        EXPECT_EQ((*job)->lease_owner, worker);
        absl::MutexLock lock(&mu);
        ++claims[(*job)->id];
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(claims.size(), static_cast<size_t>(kJobs));
  for (const auto& [id, n] : claims)
    EXPECT_EQ(n, 1) << "job " << id << " claimed " << n << " times";
  auto running = (*setup)->CountJobs({JobState::kRunning});
  ASSERT_TRUE(running.ok());
  EXPECT_EQ(*running, kJobs);
}

TEST(PostgresStoreTest, ExpiredLeaseMovesToAnotherReplicaAndFencesTheFirst) {
  const std::string dsn = NewDsn();
  auto a = Open(dsn);
  auto b = Open(dsn);
  ASSERT_TRUE(a.ok() && b.ok());
  auto job = (*a)->CreateJob(NewJob(0));
  ASSERT_TRUE(job.ok());
  auto first = (*a)->ClaimJob("replica-a/w0", absl::Seconds(30), kT0);
  ASSERT_TRUE(first.ok() && first->has_value());
  // Replica B sees nothing runnable while A's lease holds...
  auto none = (*b)->ClaimJob("replica-b/w0", absl::Seconds(30), kT0 + absl::Seconds(10));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  // ...and takes the job over once it expired (A is presumed dead).
  auto second = (*b)->ClaimJob("replica-b/w0", absl::Seconds(30), kT0 + absl::Minutes(1));
  ASSERT_TRUE(second.ok() && second->has_value());
  EXPECT_EQ((*second)->id, job->id);
  EXPECT_EQ((*second)->attempt, 2);

  const JobLease stale = LeaseOf(**first);
  EXPECT_TRUE(IsLeaseLost((*a)->HeartbeatJob(stale, kT0 + absl::Minutes(2)).status()));
  EXPECT_TRUE(IsLeaseLost((*a)->CheckpointJob(stale, "stale", "stale")));
  EXPECT_TRUE(IsLeaseLost(
      (*a)->FinishJob(stale, {JobState::kSucceeded, "stale"}, kT0 + absl::Minutes(2)).status()));
  EXPECT_TRUE(
      IsLeaseLost((*a)->AppendJobEvent(job->id, stale, "x", "", kT0 + absl::Minutes(2)).status()));
  auto done =
      (*b)->FinishJob(LeaseOf(**second), {JobState::kSucceeded, "result"}, kT0 + absl::Minutes(2));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->result, "result");
}

TEST(PostgresStoreTest, ConcurrentBatchesFromTwoReplicasStoreEachRecordOnce) {
  const std::string dsn = NewDsn();
  auto a = Open(dsn);
  auto b = Open(dsn);
  ASSERT_TRUE(a.ok() && b.ok());
  constexpr int kRecords = 2000;
  constexpr int kBatch = 250;
  std::atomic<int> stored{0};
  std::atomic<int> duplicates{0};
  // Both replicas ingest the same records (a client retrying against another replica), in
  // opposite orders so their batches overlap and race.
  auto ingest = [&](PostgresStore& store, bool reverse) {
    for (int start = 0; start < kRecords; start += kBatch) {
      std::vector<ExecutionRecordRow> rows;
      for (int k = 0; k < kBatch; ++k) {
        int i = reverse ? kRecords - 1 - (start + k) : start + k;
        ExecutionRecordRow r;
        r.record_id = absl::StrCat("rec-", i);
        r.pipeline_name = "p";
        r.success = true;
        r.duration_seconds = 0.1 * i;
        r.quality_score = 1.0 / 3.0;
        r.input_json = R"({"q": "caf\u00e9 \"quoted\" \\ {braces}"})";
        r.time = kT0 + absl::Milliseconds(i);
        rows.push_back(std::move(r));
      }
      auto results = store.InsertExecutions(rows);
      ASSERT_TRUE(results.ok()) << results.status();
      for (const auto& res : *results) {
        ASSERT_TRUE(res.status.ok()) << res.status;
        ++(res.duplicate ? duplicates : stored);
      }
    }
  };
  std::thread ta([&] { ingest(**a, false); });
  std::thread tb([&] { ingest(**b, true); });
  ta.join();
  tb.join();
  EXPECT_EQ(stored.load(), kRecords);
  EXPECT_EQ(duplicates.load(), kRecords);
  auto rows = (*a)->ListExecutions("p", kT0, absl::InfiniteFuture(), 100000);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), static_cast<size_t>(kRecords));
  EXPECT_EQ((*rows)[7].record_id, "rec-7");
  EXPECT_DOUBLE_EQ((*rows)[7].duration_seconds, 0.1 * 7);
  EXPECT_EQ((*rows)[7].quality_score, 1.0 / 3.0);  // exact round trip
  EXPECT_EQ((*rows)[7].input_json, R"({"q": "caf\u00e9 \"quoted\" \\ {braces}"})");
}

TEST(PostgresStoreTest, RowsPostgresCannotStoreAreRejectedAlone) {
  auto store = Open(NewDsn());
  ASSERT_TRUE(store.ok());
  ExecutionRecordRow good;
  good.pipeline_name = "p";
  good.input_json = "{}";
  ExecutionRecordRow bad = good;
  bad.input_json = std::string("{\"x\": \"\0\"}", 10);
  ExecutionRecordRow bad_utf8 = good;
  bad_utf8.output_json = "\xff\xfe";
  auto results = (*store)->InsertExecutions({good, bad, bad_utf8, good});
  ASSERT_TRUE(results.ok()) << results.status();
  EXPECT_TRUE((*results)[0].status.ok());
  EXPECT_EQ((*results)[1].status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string((*results)[1].status.message()), HasSubstr("input_json"));
  EXPECT_EQ((*results)[2].status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE((*results)[3].status.ok());
  auto rows = (*store)->ListExecutions("p", absl::InfinitePast(), absl::InfiniteFuture(), 0);
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->size(), 2u);
}

// Waits up to `timeout` for a notification on `conn`; returns its payload or "".
std::string NextNotification(PGconn* conn, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    PQconsumeInput(conn);
    if (PGnotify* n = PQnotifies(conn)) {
      std::string payload = absl::StrCat(n->relname, ":", n->extra);
      PQfreemem(n);
      return payload;
    }
    pollfd fd{PQsocket(conn), POLLIN, 0};
    poll(&fd, 1, 50);
  }
  return "";
}

TEST(PostgresStoreTest, JobEventsNotifyListenersWhenTheyCommit) {
  const std::string dsn = NewDsn();
  auto store = Open(dsn);
  ASSERT_TRUE(store.ok());
  PGconn* listener = PQconnectdb(dsn.c_str());
  ASSERT_EQ(PQstatus(listener), CONNECTION_OK) << PQerrorMessage(listener);
  PQclear(PQexec(listener, absl::StrCat("LISTEN ", kJobEventsChannel).c_str()));

  NewJobEvent queued{"state_changed", "queued"};
  auto job = (*store)->CreateJob(NewJob(0), nullptr, &queued);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(NextNotification(listener, absl::Seconds(10)),
            absl::StrCat(kJobEventsChannel, ":", job->id));
  auto claimed = (*store)->ClaimJob("w", absl::Minutes(1), kT0);
  ASSERT_TRUE(claimed.ok() && claimed->has_value());
  ASSERT_TRUE((*store)->AppendJobEvent(job->id, LeaseOf(**claimed), "trial", "1", kT0).ok());
  EXPECT_EQ(NextNotification(listener, absl::Seconds(10)),
            absl::StrCat(kJobEventsChannel, ":", job->id));
  JobOutcome outcome{JobState::kSucceeded, "r"};
  outcome.event = NewJobEvent{"state_changed", "succeeded"};
  ASSERT_TRUE((*store)->FinishJob(LeaseOf(**claimed), outcome, kT0).ok());
  EXPECT_EQ(NextNotification(listener, absl::Seconds(10)),
            absl::StrCat(kJobEventsChannel, ":", job->id));
  // A refused (fenced-out) append notifies nobody.
  EXPECT_FALSE((*store)->AppendJobEvent(job->id, LeaseOf(**claimed), "late", "", kT0).ok());
  EXPECT_EQ(NextNotification(listener, absl::Milliseconds(300)), "");
  PQfinish(listener);
}

TEST(PostgresStoreTest, ReplicasStartingTogetherMigrateOnce) {
  const std::string dsn = NewDsn();
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      auto store = Open(dsn, 1);
      EXPECT_TRUE(store.ok()) << store.status();
      if (store.ok()) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 4);
  auto store = Open(dsn);
  ASSERT_TRUE(store.ok());
  auto version = (*store)->SchemaVersion();
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(*version, static_cast<int>(pg::SchemaMigrations().size()));
  EXPECT_EQ(*version, 3);
}

// A database at schema 1 (executions keyed by an indexed seq column) is upgraded in place
// when a newer binary opens it: rows and their order survive, record_id idempotency still
// holds, the new key refuses a taken id, and a schema-1 replica's prune query (by seq)
// still runs during a rolling upgrade.
TEST(PostgresStoreTest, SchemaOneUpgradesInPlace) {
  const std::string dsn = NewDsn();
  const std::string dbname = DbName(dsn);
  ASSERT_TRUE(MigrateTo(dsn, 1).ok());
  // Rows written the way a schema-1 binary wrote them.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(Server()
                    ->Exec(dbname,
                           absl::StrCat("INSERT INTO executions (id, record_id, pipeline_name, "
                                        "program_version, success, duration_seconds, "
                                        "quality_score, input_json, output_json, metadata_json, "
                                        "time) VALUES ('old-",
                                        i, "', 'rec-", i, "', 'pipe', 1, true, 1.5, 8, '{}', "
                                        "'{}', '{}', ",
                                        pg::Micros(kT0 + absl::Seconds(i)), ")"))
                    .ok());
  }
  auto store = Open(dsn);
  ASSERT_TRUE(store.ok()) << store.status();
  auto version = (*store)->SchemaVersion();
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(*version, 3);
  auto listed = (*store)->ListExecutions("pipe", absl::InfinitePast(), absl::InfiniteFuture(), 0);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 3u);
  EXPECT_EQ((*listed)[0].id, "old-0");
  EXPECT_EQ((*listed)[2].id, "old-2");

  ExecutionRecordRow retry;
  retry.pipeline_name = "pipe";
  retry.record_id = "rec-1";
  retry.input_json = retry.output_json = retry.metadata_json = "{}";
  retry.time = kT0;
  ExecutionRecordRow taken = retry;
  taken.record_id = "rec-new";
  taken.id = "old-2";
  ExecutionRecordRow fresh = retry;
  fresh.record_id = "rec-3";
  auto stored = (*store)->InsertExecutions({retry, taken, fresh});
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_TRUE((*stored)[0].duplicate);
  EXPECT_EQ((*stored)[0].id, "old-1");
  EXPECT_EQ((*stored)[1].status.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE((*stored)[2].status.ok());
  ASSERT_TRUE(Server()
                  ->Exec(dbname,
                         absl::StrCat("DELETE FROM executions WHERE seq IN (SELECT seq FROM "
                                      "executions WHERE time < ",
                                      pg::Micros(kT0), " LIMIT 10 FOR UPDATE SKIP LOCKED)"))
                  .ok());
  auto pruned = (*store)->PruneExecutions(kT0 + absl::Milliseconds(1500), 100);
  ASSERT_TRUE(pruned.ok()) << pruned.status();
  EXPECT_EQ(*pruned, 3);  // old-0, old-1 and the new row at kT0
  auto left = (*store)->ListExecutions("pipe", absl::InfinitePast(), absl::InfiniteFuture(), 0);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].id, "old-2");
}

ExecutionRecordRow HarvestedRow(const std::string& dataset, const std::string& key) {
  ExecutionRecordRow r;
  r.record_id = key;
  r.pipeline_name = "p";
  r.success = true;
  r.quality_score = 9;
  r.input_json = absl::StrCat(R"({"q": ")", key, R"("})");
  r.output_json = R"({"a": 1})";
  r.metadata_json = "{}";
  r.time = kT0;
  ExampleRecord e;
  e.dataset = dataset;
  e.input_json = r.input_json;
  e.expected_output_json = r.output_json;
  e.metadata_json = "{}";
  e.content_hash = absl::StrCat("hash-", key);
  r.harvest = std::move(e);
  return r;
}

// A database at schema 2 (examples held to their dataset by a cascading foreign key; an
// index on executions.time) is upgraded in place: examples keep their order, a dataset
// deleted the way a schema-2 replica deletes it (the row alone, relying on the cascade)
// still takes its examples along, and a schema-2 replica's prune query (by time) still runs.
TEST(PostgresStoreTest, SchemaTwoUpgradesInPlace) {
  const std::string dsn = NewDsn();
  const std::string dbname = DbName(dsn);
  ASSERT_TRUE(MigrateTo(dsn, 2).ok());
  ASSERT_TRUE(Server()
                  ->Exec(dbname,
                         "INSERT INTO datasets VALUES ('old', 'p', 0, 3), ('gone', 'p', 0, 2);"
                         "INSERT INTO examples (dataset, id, input_json, expected_output_json, "
                         "metadata_json, content_hash, created_at) VALUES "
                         "('old', 'e1', '{}', '{}', '{}', 'h1', 0), "
                         "('gone', 'g1', '{}', '{}', '{}', 'h1', 0), "
                         "('old', 'e2', '{}', '{}', '{}', 'h2', 0), "
                         "('gone', 'g2', '{}', '{}', '{}', 'h2', 0), "
                         "('old', 'e3', '{}', '{}', '{}', 'h3', 0)")
                  .ok());
  auto store = Open(dsn);
  ASSERT_TRUE(store.ok()) << store.status();
  auto version = (*store)->SchemaVersion();
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(*version, 3);
  auto page = (*store)->ListExamples("old", 2, "");
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->examples.size(), 2u);
  EXPECT_EQ(page->examples[0].id, "e1");
  EXPECT_EQ(page->examples[1].id, "e2");
  auto rest = (*store)->ListExamples("old", 2, page->next_page_token);
  ASSERT_TRUE(rest.ok()) << rest.status();
  ASSERT_EQ(rest->examples.size(), 1u);
  EXPECT_EQ(rest->examples[0].id, "e3");

  // A schema-2 replica's DeleteDataset and prune, as they were written.
  ASSERT_TRUE(Server()->Exec(dbname, "DELETE FROM datasets WHERE name = 'gone'").ok());
  ASSERT_TRUE((*store)->IntegrityCheck().ok());  // no examples left naming "gone"
  ASSERT_TRUE((*store)->InsertExecutions({HarvestedRow("gone", "r1")}).ok());
  auto reborn = (*store)->ListExamples("gone", 10, "");
  ASSERT_TRUE(reborn.ok());
  ASSERT_EQ(reborn->examples.size(), 1u);  // the harvest made a new, empty dataset
  EXPECT_EQ(reborn->examples[0].content_hash, "hash-r1");
  ASSERT_TRUE(Server()
                  ->Exec(dbname, absl::StrCat("DELETE FROM executions WHERE id IN (SELECT id "
                                              "FROM executions WHERE time < ",
                                              pg::Micros(kT0) + 1,
                                              " LIMIT 10 FOR UPDATE SKIP LOCKED)"))
                  .ok());
  auto left = (*store)->ListExecutions("p", absl::InfinitePast(), absl::InfiniteFuture(), 0);
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty());
  EXPECT_TRUE((*store)->IntegrityCheck().ok());
}

// A schema-2 replica in the middle of a harvest (executions row written, then the example
// and the dataset count) while a new binary migrates to schema 3: the migration waits for
// it instead of forming a lock cycle. The writer's session detects deadlocks first (100 ms
// against the server's 1 s), so a cycle would fail the writer's statements here.
TEST(PostgresStoreTest, MigrationThreeWaitsForSchemaTwoWriters) {
  const std::string dsn = NewDsn();
  const std::string dbname = DbName(dsn);
  ASSERT_TRUE(MigrateTo(dsn, 2).ok());
  ASSERT_TRUE(Server()->Exec(dbname, "INSERT INTO datasets VALUES ('d', 'p', 0, 0)").ok());
  PGconn* writer = PQconnectdb(dsn.c_str());
  ASSERT_EQ(PQstatus(writer), CONNECTION_OK) << PQerrorMessage(writer);
  auto exec = [&](const std::string& sql) {
    PGresult* r = PQexec(writer, sql.c_str());
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    std::string error = ok ? "" : PQresultErrorMessage(r);
    PQclear(r);
    return error;
  };
  EXPECT_EQ(exec("SET deadlock_timeout = '100ms'"), "");
  EXPECT_EQ(exec("BEGIN"), "");
  EXPECT_EQ(exec("INSERT INTO executions (id, record_id, pipeline_name, program_version, "
                 "success, duration_seconds, quality_score, input_json, output_json, "
                 "metadata_json, time) VALUES ('x1', 'r1', 'p', 1, true, 1, 9, '{}', '{}', "
                 "'{}', 0)"),
            "");
  absl::Status opened;
  std::thread migrator([&] { opened = Open(dsn).status(); });
  absl::SleepFor(absl::Milliseconds(500));  // the migration is waiting for us by now
  EXPECT_EQ(exec("INSERT INTO examples (dataset, id, input_json, expected_output_json, "
                 "metadata_json, content_hash, created_at) VALUES ('d', 'e1', '{}', '{}', "
                 "'{}', 'h1', 0)"),
            "");
  EXPECT_EQ(exec("UPDATE datasets SET example_count = example_count + 1 WHERE name = 'd'"), "");
  EXPECT_EQ(exec("COMMIT"), "");
  migrator.join();
  PQfinish(writer);
  ASSERT_TRUE(opened.ok()) << opened;
  auto store = Open(dsn);
  ASSERT_TRUE(store.ok());
  auto version = (*store)->SchemaVersion();
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(*version, 3);
  EXPECT_TRUE((*store)->IntegrityCheck().ok());
  auto examples = (*store)->ListExamples("d", 10, "");
  ASSERT_TRUE(examples.ok());
  ASSERT_EQ(examples->examples.size(), 1u);
}

// Examples a schema-2 replica left behind (no foreign key holds them since schema 3) are
// never adopted: a dataset created again under their name, by CreateDataset or by a
// harvest, removes them first, so its count and its duplicate detection stay right.
TEST(PostgresStoreTest, NewDatasetsDoNotAdoptLeftoverExamples) {
  const std::string dsn = NewDsn();
  const std::string dbname = DbName(dsn);
  auto store = Open(dsn);
  ASSERT_TRUE(store.ok());
  for (const char* name : {"created", "harvested"}) {
    ASSERT_TRUE(Server()
                    ->Exec(dbname, absl::StrCat("INSERT INTO examples (dataset, id, input_json, "
                                                "expected_output_json, metadata_json, "
                                                "content_hash, created_at) VALUES ('",
                                                name, "', 'old', '{}', '{}', '{}', 'hash-r1', 0)"))
                    .ok());
  }
  EXPECT_EQ((*store)->IntegrityCheck().code(), absl::StatusCode::kDataLoss);
  DatasetRecord d;
  d.name = "created";
  d.pipeline_name = "p";
  ASSERT_TRUE((*store)->CreateDataset(d).ok());
  auto results = (*store)->InsertExecutions({HarvestedRow("harvested", "r1")});
  ASSERT_TRUE(results.ok()) << results.status();
  EXPECT_FALSE((*results)[0].example_id.empty());  // hash-r1 is new to the new dataset
  for (const char* name : {"created", "harvested"}) {
    auto page = (*store)->ListExamples(name, 10, "");
    ASSERT_TRUE(page.ok()) << name;
    for (const auto& e : page->examples) EXPECT_NE(e.id, "old") << name;
  }
  auto check = (*store)->IntegrityCheck();
  EXPECT_TRUE(check.ok()) << check;
}

// Without a foreign key, the writers' dataset lock and the delete trigger are what keep
// examples and datasets consistent: harvests, AddExamples and DeleteDataset racing from two
// replicas leave no example without its dataset and no count that is off. Each round has
// its own dataset names, deleted once mid-round and then written again: an example that
// escaped a delete stays visible to the check (a later delete of the same name would have
// swept it away).
TEST(PostgresStoreTest, DatasetsDeletedDuringHarvestsLeaveNoOrphanExamples) {
  const std::string dsn = NewDsn();
  auto a = Open(dsn);
  auto b = Open(dsn);
  ASSERT_TRUE(a.ok() && b.ok());
  std::atomic<bool> done{false};
  std::atomic<int> round{0}, harvested{0}, added{0}, deletes{0};
  auto name = [](int r, const char* suffix) { return absl::StrCat("ds-", r, suffix); };
  auto harvest = [&](PostgresStore& store, int writer) {
    for (int batch = 0; batch < 40; ++batch) {
      const int r = round.load();
      std::vector<ExecutionRecordRow> rows;
      for (int k = 0; k < 100; ++k) {
        // Mostly one dataset per batch (long harvests), sometimes two, in an order that
        // differs between the writers.
        const char* suffix = batch % 4 == 3 && (k + writer) % 2 == 1 ? "b" : "a";
        rows.push_back(
            HarvestedRow(name(r, suffix), absl::StrCat("w", writer, "-", batch, "-", k)));
      }
      auto results = store.InsertExecutions(rows);
      ASSERT_TRUE(results.ok()) << results.status();
      for (const auto& res : *results) harvested += res.example_id.empty() ? 0 : 1;
    }
  };
  std::thread ta([&] { harvest(**a, 0); });
  std::thread tb([&] { harvest(**b, 1); });
  std::thread tc([&] {
    for (int i = 0; !done; ++i) {
      DatasetRecord d;
      d.name = name(round.load(), "a");
      d.pipeline_name = "p";
      (void)(*a)->CreateDataset(d);
      std::vector<ExampleRecord> examples(20);
      for (int k = 0; k < 20; ++k) {
        examples[k].input_json = examples[k].expected_output_json = "{}";
        examples[k].metadata_json = "{}";
        examples[k].content_hash = absl::StrCat("add-", i, "-", k);
      }
      auto result = (*a)->AddExamples(d.name, examples);
      if (result.ok()) added += static_cast<int>(result->ids.size());
    }
  });
  std::thread td([&] {
    std::mt19937 rng(11);
    while (!done) {
      absl::SleepFor(absl::Microseconds(rng() % 4000));
      const int r = round.load();
      for (const char* suffix : {"a", "b"}) {
        if ((*b)->DeleteDataset(name(r, suffix)).ok()) ++deletes;
      }
      absl::SleepFor(absl::Microseconds(rng() % 4000));
      ++round;  // the writers move on; names of round r are written a little longer
    }
  });
  ta.join();
  tb.join();
  done = true;
  tc.join();
  td.join();
  EXPECT_GT(harvested.load(), 0);
  EXPECT_GT(added.load(), 0);
  EXPECT_GT(deletes.load(), 0);
  absl::Status check = (*a)->IntegrityCheck();
  EXPECT_TRUE(check.ok()) << check;

  // The check itself sees an orphan.
  const std::string dbname = DbName(dsn);
  ASSERT_TRUE(Server()
                  ->Exec(dbname,
                         "INSERT INTO examples (dataset, id, input_json, expected_output_json, "
                         "metadata_json, content_hash, created_at) VALUES ('nowhere', 'x', "
                         "'{}', '{}', '{}', 'hx', 0)")
                  .ok());
  check = (*a)->IntegrityCheck();
  EXPECT_EQ(check.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(check.message()),
              HasSubstr("dataset nowhere does not exist but 1 examples name it"));
}

TEST(PostgresStoreTest, NewerSchemaIsRefused) {
  const std::string dsn = NewDsn();
  ASSERT_TRUE(Open(dsn).ok());
  const std::string dbname = DbName(dsn);
  ASSERT_TRUE(Server()
                  ->Exec(dbname, "INSERT INTO schema_migrations VALUES (99, 'from the future', 0)")
                  .ok());
  auto store = Open(dsn);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("schema version 99"));
}

TEST(PostgresStoreTest, BadDsnsFailClearlyWithThePasswordRedacted) {
  // Nobody listens on a stopped server's port.
  int dead_port = 0;
  {
    auto pg = PostgresServer::Start();
    ASSERT_TRUE(pg.ok());
    dead_port = (*pg)->port();
  }
  const std::string kv =
      absl::StrCat("host=127.0.0.1 port=", dead_port, " user=u password=", kPassword, " dbname=d");
  auto unreachable = Open(kv);
  EXPECT_EQ(unreachable.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(unreachable.status().message()), HasSubstr("cannot connect"));
  EXPECT_THAT(std::string(unreachable.status().message()), HasSubstr("password=***"));
  EXPECT_THAT(std::string(unreachable.status().message()), Not(HasSubstr(kPassword)));

  const std::string uri =
      absl::StrCat("postgresql://u:", kPassword, "@127.0.0.1:", dead_port, "/d");
  auto unreachable_uri = Open(uri);
  EXPECT_EQ(unreachable_uri.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(unreachable_uri.status().message()), HasSubstr("u:***@127.0.0.1"));
  EXPECT_THAT(std::string(unreachable_uri.status().message()), Not(HasSubstr(kPassword)));

  auto malformed = Open(absl::StrCat("host=127.0.0.1 password='", kPassword, "' nonsense"));
  EXPECT_EQ(malformed.status().code(), absl::StatusCode::kInvalidArgument) << malformed.status();
  EXPECT_THAT(std::string(malformed.status().message()), Not(HasSubstr(kPassword)));

  ASSERT_NE(Server(), nullptr);
  auto no_database = Open(Server()->Dsn("does_not_exist"));
  EXPECT_EQ(no_database.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(no_database.status().message()), HasSubstr("does_not_exist"));

  EXPECT_EQ(pg::RedactDsn("host=h password = 'a b\\'c' user=x"), "host=h password = '***' user=x");
  EXPECT_EQ(pg::RedactDsn("postgres://u:p%40ss@h:5/d?sslmode=require"),
            "postgres://u:***@h:5/d?sslmode=require");
  EXPECT_EQ(pg::RedactDsn("host=h user=x"), "host=h user=x");
  EXPECT_EQ(pg::RedactPassword("host=h password=abc", "FATAL: user with abc failed"),
            "FATAL: user with *** failed");
}

TEST(PostgresStoreTest, LostDatabaseIsUnavailableThenTheStoreRecovers) {
  // Its own server: this test stops it.
  auto pg = PostgresServer::Start();
  ASSERT_TRUE(pg.ok()) << pg.status();
  auto dsn = (*pg)->CreateDatabase("recover");
  ASSERT_TRUE(dsn.ok());
  auto store = Open(*dsn);
  ASSERT_TRUE(store.ok());
  auto job = (*store)->CreateJob(NewJob(0));
  ASSERT_TRUE(job.ok());
  ASSERT_TRUE((*store)->GetJob(job->id).ok());  // a pooled connection to break

  ASSERT_TRUE((*pg)->Stop().ok());
  EXPECT_EQ((*store)->GetJob(job->id).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ((*store)->CreateJob(NewJob(1)).status().code(), absl::StatusCode::kUnavailable);
  auto claim = (*store)->ClaimJob("w", absl::Minutes(1), kT0);
  EXPECT_EQ(claim.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ((*store)->Ping().code(), absl::StatusCode::kUnavailable);

  ASSERT_TRUE((*pg)->Restart().ok());
  EXPECT_TRUE((*store)->Ping().ok());
  auto again = (*store)->GetJob(job->id);
  ASSERT_TRUE(again.ok()) << again.status();
  auto claimed = (*store)->ClaimJob("w", absl::Minutes(1), kT0);
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  EXPECT_TRUE(claimed->has_value());
}

}  // namespace
}  // namespace elexirion::store
