// ExecutionIngestor with several writers on a real PostgreSQL server: concurrent commits
// whose record_ids overlap (clients retrying, several runtimes reporting the same run) still
// store each (pipeline, record_id) exactly once, with its one harvested example, and every
// caller learns the stored id. Overlapping commits wait on each other's unique-index entries,
// or deadlock and are retried by the store: both must stay invisible to callers.
#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/learning/execution_ingestor.h"
#include "server/store/postgres_store.h"
#include "tests/testutil/postgres_server.h"

namespace elexirion::learning {
namespace {

using json = nlohmann::json;

// Record `n` of pipeline "overlap"; every fifth is good enough to be harvested.
ExecutionInput Record(int n) {
  ExecutionInput r;
  r.pipeline_name = "overlap";
  r.record_id = "run-" + std::to_string(n);
  r.success = true;
  r.duration_seconds = 0.5;
  r.input_json = json{{"n", n}}.dump();
  r.output_json =
      (n % 5 == 0 ? json{{"findings", {"f"}}} : json{{"severity", "low"}}).dump();
  return r;
}

TEST(IngestionPostgresTest, ConcurrentWritersStoreOverlappingRecordIdsExactlyOnce) {
  auto pg = testutil::PostgresServer::Start();
  ASSERT_TRUE(pg.ok()) << pg.status();
  auto dsn = (*pg)->CreateDatabase("ingest");
  ASSERT_TRUE(dsn.ok()) << dsn.status();
  store::PostgresStore::Options store_options;
  store_options.dsn = *dsn;
  store_options.pool_size = 6;
  auto pg_store = store::PostgresStore::Create(store_options);
  ASSERT_TRUE(pg_store.ok()) << pg_store.status();

  ExecutionIngestor::Options options;
  options.store = pg_store->get();
  options.writers = 4;
  options.parallel_commit_rows = 1;  // a commit in flight never holds the next one back
  auto ingestor = ExecutionIngestor::Create(std::move(options));
  ASSERT_TRUE(ingestor.ok()) << ingestor.status();

  // 8 callers send 15 submissions of 20 records each, drawn from 200 record ids: every id is
  // sent about 12 times, by several callers at once, in different orders.
  constexpr int kCallers = 8;
  constexpr int kSubmissions = 15;
  constexpr int kPerSubmission = 20;
  constexpr int kIds = 200;
  absl::Mutex mu;
  std::map<std::string, std::vector<IngestResult>> by_record;  // guarded by mu
  std::atomic<int> failed{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&, c] {
      std::mt19937 random(static_cast<unsigned>(c) + 1);
      for (int s = 0; s < kSubmissions; ++s) {
        std::vector<int> ns;
        for (int i = 0; i < kPerSubmission; ++i) {
          ns.push_back(static_cast<int>(random() % kIds));
        }
        std::sort(ns.begin(), ns.end());
        ns.erase(std::unique(ns.begin(), ns.end()), ns.end());
        if (s % 2 == 1) std::reverse(ns.begin(), ns.end());
        std::vector<ExecutionInput> records;
        for (int n : ns) records.push_back(Record(n));
        absl::Notification done;
        absl::Status queued =
            (*ingestor)->Ingest(std::move(records), [&](std::vector<IngestResult> results) {
              absl::MutexLock lock(&mu);
              for (size_t i = 0; i < results.size(); ++i) {
                if (!results[i].status.ok()) ++failed;
                by_record["run-" + std::to_string(ns[i])].push_back(results[i]);
              }
              done.Notify();
            });
        if (!queued.ok()) {
          ++failed;
          continue;
        }
        done.WaitForNotification();
      }
    });
  }
  for (auto& caller : callers) caller.join();
  (*ingestor)->Stop();

  EXPECT_EQ(failed.load(), 0);
  absl::MutexLock lock(&mu);
  int distinct = 0, distinct_good = 0;
  for (const auto& [record_id, results] : by_record) {
    ++distinct;
    if (std::stoi(record_id.substr(4)) % 5 == 0) ++distinct_good;
    int stored = 0;
    for (const IngestResult& r : results) {
      stored += r.duplicate ? 0 : 1;
      EXPECT_EQ(r.id, results.front().id) << record_id << ": callers were told different ids";
    }
    EXPECT_EQ(stored, 1) << record_id << " was stored " << stored << " times";
  }
  ASSERT_GT(distinct, 150);
  auto summary = (*pg_store)->SummarizeExecutions("overlap", absl::InfinitePast(),
                                                  absl::InfiniteFuture());
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->executions, distinct);
  auto examples = (*pg_store)->ListExamples("overlap", 1000, "");
  ASSERT_TRUE(examples.ok()) << examples.status();
  EXPECT_EQ(static_cast<int>(examples->examples.size()), distinct_good);
}

}  // namespace
}  // namespace elexirion::learning
