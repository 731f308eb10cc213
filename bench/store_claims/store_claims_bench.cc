// store_claims_bench: job claims per second on the Store itself (no gRPC), SQLite next to
// PostgreSQL, with 1 and 4 claiming threads.
//
// Each run opens a fresh database (a SQLite file in a temp dir: WAL, synchronous=NORMAL; or a
// database on a throw-away PostgreSQL 15 server on loopback this bench starts, fsync=off),
// creates --jobs QUEUED jobs, then the threads loop ClaimJob -> FinishJob until nothing is
// runnable, as job workers do (a claimed job leaves 'running' again, so the claim query sees
// a realistic handful of running rows). Printed per run: claims/s (= claim+finish cycles per
// second over the wall time), ClaimJob latency p50/p99, CreateJob/s of the set-up, and a
// check that every job was claimed exactly once.
//
// usage: store_claims_bench [--jobs N] [--threads 1,4] [--sqlite-only | --postgres-only]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/store/postgres_store.h"
#include "server/store/sqlite_store.h"
#include "tests/testutil/postgres_server.h"
#include "tests/testutil/temp_dir.h"

namespace elexirion {
namespace {

using SteadyClock = std::chrono::steady_clock;

struct Options {
  int jobs = 2000;
  std::vector<int> threads = {1, 4};
  bool sqlite = true;
  bool postgres = true;
};

double Pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

// One run on a fresh `store`: returns false when a job was lost or claimed twice.
bool RunClaims(const std::string& backend, store::Store& store, int jobs, int threads) {
  const absl::Time t0 = absl::Now();
  const auto create_start = SteadyClock::now();
  for (int i = 0; i < jobs; ++i) {
    store::JobRecord job;
    job.program_name = "bench";
    job.optimizer = "bootstrap_few_shot";
    job.request = std::string(200, 'r');
    job.created_at = t0 + absl::Microseconds(i);
    auto created = store.CreateJob(job);
    if (!created.ok()) {
      std::printf("  CreateJob: %s\n", created.status().ToString().c_str());
      return false;
    }
  }
  const double create_wall =
      std::chrono::duration<double>(SteadyClock::now() - create_start).count();

  std::mutex mu;
  std::map<std::string, int> claimed;
  std::vector<double> latencies_ms;
  std::atomic<int> errors{0};
  const absl::Time now = t0 + absl::Hours(1);
  const auto start = SteadyClock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      const std::string worker = absl::StrCat("worker-", t);
      std::vector<std::string> mine;
      std::vector<double> lat;
      while (true) {
        const auto before = SteadyClock::now();
        auto job = store.ClaimJob(worker, absl::Minutes(5), now);
        lat.push_back(
            std::chrono::duration<double, std::milli>(SteadyClock::now() - before).count());
        if (!job.ok()) {
          if (errors++ == 0) std::printf("  ClaimJob: %s\n", job.status().ToString().c_str());
          break;
        }
        if (!job->has_value()) break;
        mine.push_back((*job)->id);
        auto finished = store.FinishJob(store::LeaseOf(**job), {store::JobState::kSucceeded}, now);
        if (!finished.ok() && errors++ == 0) {
          std::printf("  FinishJob: %s\n", finished.status().ToString().c_str());
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      for (const auto& id : mine) ++claimed[id];
      latencies_ms.insert(latencies_ms.end(), lat.begin(), lat.end());
    });
  }
  for (auto& w : workers) w.join();
  const double wall = std::chrono::duration<double>(SteadyClock::now() - start).count();
  bool exact = static_cast<int>(claimed.size()) == jobs && errors.load() == 0;
  for (const auto& [id, n] : claimed) exact = exact && n == 1;
  std::printf(
      "  %-10s threads=%d: %6.0f claims/s (claim+finish cycles)   ClaimJob p50 %.2f ms  "
      "p99 %.2f ms   set-up %6.0f CreateJob/s   each job claimed once: %s\n",
      backend.c_str(), threads, static_cast<double>(claimed.size()) / wall, Pct(latencies_ms, 0.50),
      Pct(latencies_ms, 0.99), static_cast<double>(jobs) / create_wall, exact ? "yes" : "NO");
  return exact;
}

int Run(const Options& options) {
  std::printf("store_claims: %d jobs per run, %u cores\n", options.jobs,
              std::thread::hardware_concurrency());
  bool ok = true;
  if (options.sqlite) {
    for (int threads : options.threads) {
      testutil::TempDir dir;
      store::SqliteStore::Options store_options;
      store_options.path = dir.File("claims.sqlite");
      auto store = store::SqliteStore::Create(store_options);
      if (!store.ok()) {
        std::printf("  sqlite: %s\n", store.status().ToString().c_str());
        return 1;
      }
      ok = RunClaims("sqlite", **store, options.jobs, threads) && ok;
    }
  }
  if (options.postgres) {
    auto server = testutil::PostgresServer::Start();
    if (!server.ok()) {
      std::printf("  postgres: %s\n", server.status().ToString().c_str());
      return 1;
    }
    for (int threads : options.threads) {
      auto dsn = (*server)->CreateDatabase();
      if (!dsn.ok()) {
        std::printf("  postgres: %s\n", dsn.status().ToString().c_str());
        return 1;
      }
      store::PostgresStore::Options store_options;
      store_options.dsn = *dsn;
      store_options.pool_size = std::max(threads, 2);
      auto store = store::PostgresStore::Create(store_options);
      if (!store.ok()) {
        std::printf("  postgres: %s\n", store.status().ToString().c_str());
        return 1;
      }
      ok = RunClaims("postgres", **store, options.jobs, threads) && ok;
    }
  }
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace elexirion

int main(int argc, char** argv) {
  elexirion::Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : "";
    if (arg == "--jobs" && absl::SimpleAtoi(value, &options.jobs) && options.jobs > 0) {
      ++i;
    } else if (arg == "--threads") {
      options.threads.clear();
      for (absl::string_view part : absl::StrSplit(value, ',')) {
        int t = 0;
        if (absl::SimpleAtoi(part, &t) && t > 0) options.threads.push_back(t);
      }
      ++i;
    } else if (arg == "--sqlite-only") {
      options.postgres = false;
    } else if (arg == "--postgres-only") {
      options.sqlite = false;
    } else {
      std::fprintf(stderr,
                   "usage: store_claims_bench [--jobs N] [--threads 1,4] "
                   "[--sqlite-only | --postgres-only]\n");
      return 2;
    }
  }
  return elexirion::Run(options);
}
