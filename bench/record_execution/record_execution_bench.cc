// record_execution_bench: durable ingestion through TelemetryService against the real server
// (SQLite file in a temp dir, default configuration: WAL, synchronous=NORMAL) over gRPC on
// loopback. Every acknowledgement means a committed SQLite transaction.
//
//   1. RecordExecution (unary) at concurrency 16: callback clients, 16 calls always in flight
//      on one channel; records/s and ack latency p50/p99/max.
//   2. RecordExecutions in batches of 100 at concurrency 1, 4, 8 and 16 (one thread per caller):
//      records/s and batch ack latency p50/p99.
//   3. StreamExecutions: one (or --streams) client stream of 100k records: records/s.
//
// Every record is realistic: ~500 bytes of input/output Struct (a code-analysis execution),
// a unique record_id and unique content (the batch and stream senders refill one request in
// place rather than build new Structs, as a load generator should), and 10% with quality 9.0 (above the 8.0 harvest threshold) so they
// become training examples in the same transaction. Each phase writes its own pipeline; at
// the end GetUsageStats must count exactly the acknowledged records (and harvested examples)
// of every pipeline, or the run fails.
//
// Besides the figures the bench prints, per phase: server CPU per record (from /proc, the
// server being a separate process), the client's CPU per record, the busiest server threads,
// and the group commits seen on the server's /metrics (rows per commit, commit time, share
// of the wall time the writer spent committing). A last section times the pieces without
// gRPC in this process: record validation, and the ingestor's group commit straight on a
// SQLite store.
//
// With --postgres the server runs on the PostgreSQL store (store.driver=postgres) against a
// throw-away PostgreSQL server this bench starts (tests/testutil/postgres_server.h: fsync=off,
// so commits cost what the store and the protocol cost, not the disk), and the breakdown
// times PostgresStore instead of SqliteStore.
//
// usage: record_execution_bench [--seconds N]          unary phase length (default 8)
//                               [--batch-seconds N]    each batch concurrency (default 4)
//                               [--stream-records N]   records per stream (default 100000)
//                               [--streams N]          concurrent streams (default 1)
//                               [--concurrency N]      unary callers in flight (default 16)
//                               [--batch-size N]       records per RecordExecutions (100)
//                               [--batch-concurrency 1,4,8,16]
//                               [--in-process]         server in this process (its CPU then
//                                                      includes the client's)
//                               [--no-breakdown]       skip the in-process breakdown
//                               [--postgres]           PostgreSQL store instead of SQLite
//                               [--server-flag --k=v]  extra elexirion-server flag (repeatable)
// A default run takes about 30-35 s on 2 cores.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "elexirion/v1/telemetry.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/proto_buffer_reader.h"
#include "server/api/execution_record.h"
#include "server/common/ids.h"
#include "server/common/logging.h"
#include "server/learning/execution_ingestor.h"
#include "server/store/postgres_store.h"
#include "server/store/sqlite_store.h"
#include "tests/testutil/postgres_server.h"
#include "tests/testutil/test_server.h"

namespace elexirion {
namespace {

using SteadyClock = std::chrono::steady_clock;

double SecondsSince(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

// ---------------------------------------------------------------------------------------
// Options

struct Options {
  int unary_seconds = 8;
  int batch_seconds = 4;
  int64_t stream_records = 100000;
  int streams = 1;
  int concurrency = 16;
  int batch_size = 100;
  std::vector<int> batch_concurrency = {1, 4, 8, 16};
  bool in_process = false;
  bool breakdown = true;
  bool postgres = false;
  // Extra elexirion-server flags (separate-process server only), e.g.
  // --store.postgres_ingest_writers=1 to compare configurations.
  std::vector<std::string> server_flags;
};

constexpr double kUnaryTarget = 5000;
constexpr double kBatchTarget = 50000;

// ---------------------------------------------------------------------------------------
// Records

// A code-analysis execution of ~500 bytes of input/output; record `n` of a run is unique
// (record_id and content), and every tenth has quality 9.0 and success: harvested.
//
// FillRecord writes every field of record `n` into `r` in place. On a record that already
// holds an earlier record's fields this only overwrites strings and numbers (no Struct or map
// node is allocated), which is how the senders below reuse one request: a load generator
// that rebuilt every Struct from scratch spent more CPU than the server it measured, on the
// same 2 cores.
void FillRecord(const std::string& pipeline, const std::string& nonce, int64_t n,
                v1::ExecutionRecord* r, bool* harvestable) {
  const bool good = n % 10 == 0;
  *harvestable = good;
  r->set_pipeline_name(pipeline);
  r->set_program_version(3);
  // n is written in 12 fixed digits (record_id and code): EncodedBatch patches them in place.
  char digits[16];
  std::snprintf(digits, sizeof(digits), "%012lld", static_cast<long long>(n));
  r->mutable_record_id()->clear();
  absl::StrAppend(r->mutable_record_id(), nonce, "-", digits);
  r->set_success(good || n % 29 != 7);
  r->set_quality_score(good ? 9.0 : 3.0 + static_cast<double>(n % 47) / 10.0);  // 3.0..7.6
  r->mutable_duration()->set_seconds(n % 6);
  r->mutable_duration()->set_nanos(static_cast<int32_t>((n * 7919) % 1000) * 1000000);
  auto& in = *r->mutable_input()->mutable_fields();
  std::string* code = in["code"].mutable_string_value();
  code->clear();
  absl::StrAppend(code, "def handler_", digits,
                  "(request):\n    user = db.query(\"SELECT * FROM users WHERE id = \" "
                  "+ request.args['id'])\n    log.info('lookup %s', user)\n    return render(user)\n");
  in["language"].set_string_value("python");
  std::string* file = in["file"].mutable_string_value();
  file->clear();
  absl::StrAppend(file, "services/api/handlers_", n % 97, ".py");
  in["line"].set_number_value(static_cast<double>(n % 400));
  auto& out = *r->mutable_output()->mutable_fields();
  auto& analyze = *out["analyze"].mutable_struct_value()->mutable_fields();
  analyze["findings"].set_string_value(
      "SQL injection: request.args['id'] is concatenated into the query string; an attacker "
      "controls the WHERE clause.");
  analyze["severity"].set_string_value(n % 3 == 0 ? "high" : "medium");
  analyze["recommendations"].set_string_value(
      "Use a parameterised query and validate the id as an integer before the lookup.");
  auto& tags = *analyze["tags"].mutable_list_value();
  if (tags.values_size() == 0) {
    tags.add_values()->set_string_value("security");
    tags.add_values()->set_string_value("sql");
  }
  out["status"].set_string_value("ok");
  auto& meta = *r->mutable_metadata()->mutable_fields();
  meta["runtime"].set_string_value("elexirion-runtime/1.4.2");
  std::string* host = meta["host"].mutable_string_value();
  host->clear();
  absl::StrAppend(host, "worker-", n % 8);
}

v1::ExecutionRecord MakeRecord(const std::string& pipeline, const std::string& nonce, int64_t n,
                               bool* harvestable) {
  v1::ExecutionRecord r;
  FillRecord(pipeline, nonce, n, &r, harvestable);
  return r;
}

// A RecordExecutionsRequest of `size` records encoded once; Renumber(first) rewrites it in
// place into records first .. first+size-1: new record_ids and code (so new content hashes,
// every example harvested anew), everything else as record `i` of the template. This keeps
// the load generator's CPU per record (~1 us) well below the server's on the shared cores:
// encoding 100 Structs per batch cost it ~5 us per record.
class EncodedBatch {
 public:
  EncodedBatch(const std::string& pipeline, const std::string& nonce, int size) {
    // Template slot i is numbered kMarker + i: 12 digits found exactly twice in its bytes.
    constexpr int64_t kMarker = 987'600'000'000;
    v1::RecordExecutionsRequest request;
    for (int i = 0; i < size; ++i) {
      bool good = false;
      FillRecord(pipeline, nonce, kMarker + i, request.add_records(), &good);
      harvestable_ += good ? 1 : 0;
    }
    bytes_ = request.SerializeAsString();
    for (int i = 0; i < size; ++i) {
      const std::string marker = absl::StrCat(kMarker + i);
      for (size_t at = bytes_.find(marker); at != std::string::npos;
           at = bytes_.find(marker, at + 1)) {
        offsets_.push_back({at, i});
      }
    }
    if (offsets_.size() != 2 * static_cast<size_t>(size)) {
      std::fprintf(stderr, "EncodedBatch: record numbers not found in the encoding\n");
      std::abort();
    }
  }

  // Records (by the template) with quality 9.0 and success: harvested.
  int64_t harvestable() const { return harvestable_; }

  const std::string& Renumber(int64_t first) {
    char digits[16];
    for (const auto& [at, slot] : offsets_) {
      std::snprintf(digits, sizeof(digits), "%012lld", static_cast<long long>(first + slot));
      std::memcpy(&bytes_[at], digits, 12);
    }
    return bytes_;
  }

 private:
  std::string bytes_;
  std::vector<std::pair<size_t, int>> offsets_;  // (byte offset, template slot)
  int64_t harvestable_ = 0;
};

// ---------------------------------------------------------------------------------------
// CPU: the server process from /proc (whole process and per thread), this process by rusage.

double ClientCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// utime+stime in seconds and the thread name, from a /proc/.../stat file.
bool ReadStat(const std::string& path, double* cpu, std::string* comm) {
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return false;
  const size_t open = line.find('('), close = line.rfind(')');
  if (open == std::string::npos || close == std::string::npos) return false;
  if (comm != nullptr) *comm = line.substr(open + 1, close - open - 1);
  std::vector<std::string> fields = absl::StrSplit(line.substr(close + 2), ' ');
  // Fields after "(comm) ": state is [0], utime is stat field 14 -> [11], stime [12].
  if (fields.size() < 13) return false;
  double utime = 0, stime = 0;
  (void)absl::SimpleAtod(fields[11], &utime);
  (void)absl::SimpleAtod(fields[12], &stime);
  *cpu = (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  return true;
}

// CPU seconds of a PostgreSQL server so far: the postmaster and its live children (the
// backends serving our connections).
double PostgresCpuSeconds(pid_t postmaster) {
  double total = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    pid_t pid = 0;
    if (!absl::SimpleAtoi(name, &pid)) continue;
    std::ifstream in(entry.path().string() + "/stat");
    std::string line;
    if (!std::getline(in, line)) continue;
    const size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::vector<std::string> fields = absl::StrSplit(line.substr(close + 2), ' ');
    pid_t ppid = 0;
    if (fields.size() < 13 || !absl::SimpleAtoi(fields[1], &ppid)) continue;
    if (pid != postmaster && ppid != postmaster) continue;
    double cpu = 0;
    if (ReadStat(entry.path().string() + "/stat", &cpu, nullptr)) total += cpu;
  }
  return total;
}

struct ThreadSample {
  std::string name;
  double cpu = 0;       // s on a CPU (schedstat)
  double runq = 0;      // s runnable but waiting for a CPU (schedstat)
  double written = 0;   // bytes passed to write()-like calls (io: wchar)
};

struct CpuSnapshot {
  double process = 0;
  double client = 0;
  std::map<int, ThreadSample> threads;  // by tid
};

// First line's whitespace-separated numbers of a small /proc file.
std::vector<double> ReadNumbers(const std::string& path) {
  std::ifstream in(path);
  std::vector<double> out;
  double v = 0;
  while (in >> v) out.push_back(v);
  return out;
}

double ReadWchar(const std::string& path) {
  std::ifstream in(path);
  std::string key;
  double value = 0;
  while (in >> key >> value) {
    if (key == "wchar:") return value;
  }
  return 0;
}

CpuSnapshot TakeCpu(pid_t server_pid) {
  CpuSnapshot s;
  s.client = ClientCpuSeconds();
  if (server_pid <= 0) {
    s.process = s.client;
    return s;
  }
  (void)ReadStat(absl::StrCat("/proc/", server_pid, "/stat"), &s.process, nullptr);
  std::error_code ec;
  for (const auto& e :
       std::filesystem::directory_iterator(absl::StrCat("/proc/", server_pid, "/task"), ec)) {
    int tid = 0;
    if (!absl::SimpleAtoi(e.path().filename().string(), &tid)) continue;
    double cpu = 0;
    ThreadSample t;
    if (!ReadStat(e.path().string() + "/stat", &cpu, &t.name)) continue;
    std::vector<double> sched = ReadNumbers(e.path().string() + "/schedstat");
    t.cpu = sched.size() >= 2 ? sched[0] / 1e9 : cpu;
    t.runq = sched.size() >= 2 ? sched[1] / 1e9 : 0;
    t.written = ReadWchar(e.path().string() + "/io");
    s.threads[tid] = t;
  }
  return s;
}

// ---------------------------------------------------------------------------------------
// Group commits from the server's /metrics (Prometheus text).

struct CommitMetrics {
  double rows_sum = 0, rows_count = 0, seconds_sum = 0;
  std::vector<std::pair<double, double>> seconds_buckets;  // (le, cumulative count)
  bool ok = false;
};

CommitMetrics ScrapeCommits(int http_port) {
  CommitMetrics m;
  if (http_port <= 0) return m;
  auto got = testutil::HttpGet(http_port, "/metrics");
  if (!got.ok() || got->first != 200) return m;
  std::istringstream lines(got->second);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    if (space == std::string::npos) continue;
    double value = 0;
    if (!absl::SimpleAtod(line.substr(space + 1), &value)) continue;
    const std::string key = line.substr(0, space);
    if (key == "elexirion_execution_commit_rows_sum") {
      m.rows_sum = value;
    } else if (key == "elexirion_execution_commit_rows_count") {
      m.rows_count = value, m.ok = true;
    } else if (key == "elexirion_execution_commit_seconds_sum") {
      m.seconds_sum = value;
    } else if (key.rfind("elexirion_execution_commit_seconds_bucket{le=\"", 0) == 0) {
      const size_t start = key.find('"') + 1;
      const std::string le = key.substr(start, key.find('"', start) - start);
      double bound = 0;
      if (le == "+Inf") {
        bound = 1e9;
      } else if (!absl::SimpleAtod(le, &bound)) {
        continue;
      }
      m.seconds_buckets.emplace_back(bound, value);
    }
  }
  return m;
}

// Upper bound of the bucket holding quantile q of the commits between two scrapes.
double BucketQuantile(const CommitMetrics& before, const CommitMetrics& after, double q) {
  if (after.seconds_buckets.size() != before.seconds_buckets.size() ||
      after.seconds_buckets.empty()) {
    return 0;
  }
  const double total = after.seconds_buckets.back().second - before.seconds_buckets.back().second;
  if (total <= 0) return 0;
  for (size_t i = 0; i < after.seconds_buckets.size(); ++i) {
    const double count = after.seconds_buckets[i].second - before.seconds_buckets[i].second;
    if (count >= q * total) return after.seconds_buckets[i].first;
  }
  return after.seconds_buckets.back().first;
}

// ---------------------------------------------------------------------------------------
// The server under test.

struct Target {
  // Declared first: stopped last, after the elexirion server that uses it.
  std::unique_ptr<testutil::PostgresServer> postgres;
  std::unique_ptr<testutil::InProcessServer> in_process;
  std::unique_ptr<testutil::ServerProcess> process;
  std::string address;
  int http_port = 0;
  pid_t pid = -1;  // -1 in-process
};

// Counts of one phase; `pipeline` is verified against GetUsageStats at the end.
struct PhaseTally {
  std::string pipeline;
  std::atomic<int64_t> acked{0};       // records acknowledged as stored
  std::atomic<int64_t> harvested{0};   // of those, reported harvested
  std::atomic<int64_t> expected_harvest{0};
  std::atomic<int64_t> rejected{0};    // records a batch/stream reported rejected
  std::atomic<int64_t> failed_calls{0};
  std::mutex mu;
  std::string first_error;
  void Fail(const grpc::Status& status) {
    ++failed_calls;
    std::lock_guard<std::mutex> lock(mu);
    if (first_error.empty()) {
      first_error = absl::StrCat(static_cast<int>(status.error_code()), ": ", status.error_message());
    }
  }
};

// Measures server and client CPU and the group commits around a phase.
class PhaseProbe {
 public:
  explicit PhaseProbe(const Target& target) : target_(target) {
    cpu_ = TakeCpu(target_.pid);
    if (target_.postgres != nullptr) postgres_cpu_ = PostgresCpuSeconds(target_.postgres->pid());
    commits_ = ScrapeCommits(target_.http_port);
    // The ingestor's writer is the thread that wrote the most so far (the warm-up ran).
    double most = 0;
    for (const auto& [tid, t] : cpu_.threads) {
      if (t.written > most) most = t.written, writer_tid_ = tid;
    }
    if (writer_tid_ > 0) {
      sampler_ = std::thread([this] {
        const std::string path = absl::StrCat("/proc/", target_.pid, "/task/", writer_tid_, "/stat");
        while (!stop_.load()) {
          std::ifstream in(path);
          std::string line;
          if (std::getline(in, line)) {
            const size_t close = line.rfind(')');
            if (close != std::string::npos && close + 2 < line.size()) {
              const char state = line[close + 2];
              ++samples_;
              if (state == 'D') ++in_d_;
            }
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
      });
    }
    start_ = SteadyClock::now();
  }
  ~PhaseProbe() { StopSampler(); }

  void StopSampler() {
    stop_ = true;
    if (sampler_.joinable()) sampler_.join();
  }

  // Prints the per-record costs for `records` acknowledged records.
  void Report(int64_t records) {
    const double wall = SecondsSince(start_);
    StopSampler();
    CpuSnapshot cpu = TakeCpu(target_.pid);
    CommitMetrics commits = ScrapeCommits(target_.http_port);
    const double n = static_cast<double>(std::max<int64_t>(records, 1));
    const double server_cpu = cpu.process - cpu_.process;
    const double client_cpu = cpu.client - cpu_.client;
    if (target_.pid > 0) {
      std::printf("    cpu: server %.1f us/record (%.2f cores busy), client %.1f us/record "
                  "(%.2f cores); server-only ceiling on %u cores: %.0f records/s\n",
                  server_cpu / n * 1e6, server_cpu / wall, client_cpu / n * 1e6,
                  client_cpu / wall, std::thread::hardware_concurrency(),
                  server_cpu > 0 ? std::thread::hardware_concurrency() * n / server_cpu : 0.0);
      if (target_.postgres != nullptr) {
        // Steadier than records/s on a shared VM for comparing schemas and write paths.
        const double pg_cpu = PostgresCpuSeconds(target_.postgres->pid()) - postgres_cpu_;
        std::printf("    cpu: PostgreSQL %.1f us/record (%.2f cores busy); all three %.1f "
                    "us/record\n",
                    pg_cpu / n * 1e6, pg_cpu / wall, (server_cpu + client_cpu + pg_cpu) / n * 1e6);
      }
      // Busiest server threads over the phase: on a CPU, and waiting for one.
      std::vector<std::pair<double, std::string>> busy;
      for (const auto& [tid, t] : cpu.threads) {
        auto before = cpu_.threads.find(tid);
        ThreadSample b = before != cpu_.threads.end() ? before->second : ThreadSample();
        const double used = t.cpu - b.cpu, runq = t.runq - b.runq;
        if (used > 0) {
          busy.emplace_back(used, absl::StrCat(tid == writer_tid_ ? "WRITER " : "", t.name, "/",
                                               tid, " ", static_cast<int>(used / wall * 100 + 0.5),
                                               "% (+", static_cast<int>(runq / wall * 100 + 0.5),
                                               "% runq)"));
        }
        if (tid == writer_tid_) {
          writer_line_ = absl::StrCat(
              "    writer thread: on a CPU ", static_cast<int>(used / wall * 100 + 0.5),
              "%, runnable waiting for a CPU ", static_cast<int>(runq / wall * 100 + 0.5),
              "%, in D state (disk: fsync/checkpoint) ",
              samples_.load() > 0 ? static_cast<int>(100.0 * in_d_.load() / samples_.load() + 0.5) : 0,
              "% of samples; wrote ", static_cast<int>((t.written - b.written) / 1e6), " MB (",
              static_cast<int>((t.written - b.written) / std::max<int64_t>(records, 1)),
              " bytes/record incl. WAL and checkpoints)");
        }
      }
      std::sort(busy.rbegin(), busy.rend());
      std::string top;
      for (size_t i = 0; i < busy.size() && i < 5; ++i) {
        absl::StrAppend(&top, i > 0 ? ", " : "", busy[i].second);
      }
      std::printf("    busiest server threads (%% of one core): %s\n", top.c_str());
      if (!writer_line_.empty()) std::printf("%s\n", writer_line_.c_str());
    } else {
      std::printf("    cpu: whole process (server and client share it) %.1f us/record, "
                  "%.2f cores busy\n",
                  server_cpu / n * 1e6, server_cpu / wall);
    }
    if (commits.ok && commits_.ok) {
      const double count = commits.rows_count - commits_.rows_count;
      const double rows = commits.rows_sum - commits_.rows_sum;
      const double secs = commits.seconds_sum - commits_.seconds_sum;
      if (count > 0) {
        std::printf("    group commits: %.0f (%.0f/s), %.1f rows/commit, commit time mean "
                    "%.2f ms (p50 <= %.4g s, p99 <= %.4g s), %.1f us/row; writer committing "
                    "%.0f%% of the wall time\n",
                    count, count / wall, rows / count, secs / count * 1e3,
                    BucketQuantile(commits_, commits, 0.5), BucketQuantile(commits_, commits, 0.99),
                    rows > 0 ? secs / rows * 1e6 : 0.0, secs / wall * 100);
      }
    }
  }

 private:
  const Target& target_;
  CpuSnapshot cpu_;
  double postgres_cpu_ = 0;  // CPU seconds of the PostgreSQL server at the start
  CommitMetrics commits_;
  SteadyClock::time_point start_;
  int writer_tid_ = 0;
  std::thread sampler_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> samples_{0}, in_d_{0};
  std::string writer_line_;
};

struct Latencies {
  std::vector<double> ms;
  double Pct(double p) const {
    if (ms.empty()) return 0;
    return ms[std::min(ms.size() - 1, static_cast<size_t>(p * static_cast<double>(ms.size())))];
  }
  double Max() const { return ms.empty() ? 0 : ms.back(); }
};

// ---------------------------------------------------------------------------------------
// Phase 1: unary RecordExecution with `concurrency` calls always in flight (callback API).

class UnaryDriver {
 public:
  UnaryDriver(const client::Client& client, PhaseTally* tally, std::string nonce,
              int concurrency)
      : client_(client), tally_(tally), nonce_(std::move(nonce)),
        latencies_(static_cast<size_t>(concurrency)), active_(concurrency) {}

  // Runs until `duration` passed (or `max_records` were issued, when > 0); returns the wall
  // time from the first call to the last acknowledgement.
  double Run(absl::Duration duration, int64_t max_records = 0) {
    max_records_ = max_records;
    start_ = SteadyClock::now();
    end_ = start_ + std::chrono::nanoseconds(absl::ToInt64Nanoseconds(duration));
    for (size_t slot = 0; slot < latencies_.size(); ++slot) Issue(slot);
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return active_ == 0; });
    return SecondsSince(start_);
  }

  Latencies AllLatencies() const {
    Latencies all;
    for (const auto& v : latencies_) all.ms.insert(all.ms.end(), v.begin(), v.end());
    std::sort(all.ms.begin(), all.ms.end());
    return all;
  }

 private:
  struct Call {
    grpc::ClientContext ctx;
    v1::RecordExecutionRequest request;
    v1::RecordExecutionResponse response;
    SteadyClock::time_point sent;
    bool harvestable = false;
  };

  void Issue(size_t slot) {
    const int64_t n = next_.fetch_add(1);
    if (SteadyClock::now() >= end_ || (max_records_ > 0 && n >= max_records_)) {
      std::lock_guard<std::mutex> lock(mu_);
      if (--active_ == 0) cv_.notify_all();
      return;
    }
    auto* call = new Call();
    client_.Prepare(&call->ctx);
    *call->request.mutable_record() = MakeRecord(tally_->pipeline, nonce_, n, &call->harvestable);
    call->sent = SteadyClock::now();
    client_.telemetry().async()->RecordExecution(
        &call->ctx, &call->request, &call->response, [this, slot, call](grpc::Status status) {
          latencies_[slot].push_back(
              std::chrono::duration<double, std::milli>(SteadyClock::now() - call->sent).count());
          if (status.ok()) {
            ++tally_->acked;
            if (call->response.harvested()) ++tally_->harvested;
            if (call->harvestable) ++tally_->expected_harvest;
          } else {
            tally_->Fail(status);
          }
          delete call;
          Issue(slot);
        });
  }

  const client::Client& client_;
  PhaseTally* const tally_;
  const std::string nonce_;
  // One vector per slot: a slot's calls run one after another.
  std::vector<std::vector<double>> latencies_;
  std::atomic<int64_t> next_{0};
  int64_t max_records_ = 0;
  SteadyClock::time_point start_, end_;
  std::mutex mu_;
  std::condition_variable cv_;
  int active_;
};

// ---------------------------------------------------------------------------------------
// Phase 2: RecordExecutions, `concurrency` threads each sending batches back to back.

struct BatchResult {
  double wall = 0;
  Latencies latencies;
};

BatchResult RunBatches(const client::Client& client, PhaseTally* tally, const std::string& nonce,
                       int concurrency, int batch_size, absl::Duration duration) {
  std::atomic<int64_t> next{0};
  std::vector<std::vector<double>> latencies(static_cast<size_t>(concurrency));
  const SteadyClock::time_point start = SteadyClock::now();
  const SteadyClock::time_point end =
      start + std::chrono::nanoseconds(absl::ToInt64Nanoseconds(duration));
  std::vector<std::thread> threads;
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&, t] {
      EncodedBatch batch(tally->pipeline, nonce, batch_size);
      grpc::GenericStub stub(client.channel());
      while (SteadyClock::now() < end) {
        const std::string& bytes = batch.Renumber(next.fetch_add(batch_size));
        grpc::Slice slice(bytes);
        grpc::ByteBuffer request(&slice, 1), reply;
        grpc::ClientContext ctx;
        client.Prepare(&ctx);
        std::promise<grpc::Status> done;
        const SteadyClock::time_point sent = SteadyClock::now();
        stub.UnaryCall(&ctx, "/elexirion.v1.TelemetryService/RecordExecutions",
                       grpc::StubOptions(), &request, &reply,
                       [&done](grpc::Status status) { done.set_value(std::move(status)); });
        grpc::Status status = done.get_future().get();
        latencies[static_cast<size_t>(t)].push_back(
            std::chrono::duration<double, std::milli>(SteadyClock::now() - sent).count());
        v1::RecordExecutionsResponse response;
        if (status.ok() && !grpc::GenericDeserialize<grpc::ProtoBufferReader,
                                                     v1::RecordExecutionsResponse>(&reply,
                                                                                   &response)
                                .ok()) {
          status = grpc::Status(grpc::StatusCode::INTERNAL, "cannot parse the response");
        }
        if (!status.ok()) {
          tally->Fail(status);
          continue;
        }
        tally->acked += response.accepted();
        tally->harvested += response.harvested();
        tally->rejected += response.rejected_size();
        const int64_t harvestable = batch.harvestable();
        if (response.rejected_size() == 0) tally->expected_harvest += harvestable;
      }
    });
  }
  for (auto& th : threads) th.join();
  BatchResult result;
  result.wall = SecondsSince(start);
  for (auto& v : latencies) result.latencies.ms.insert(result.latencies.ms.end(), v.begin(), v.end());
  std::sort(result.latencies.ms.begin(), result.latencies.ms.end());
  return result;
}

// ---------------------------------------------------------------------------------------
// Phase 3: StreamExecutions, `streams` client streams of `records` each.

double RunStreams(const client::Client& client, PhaseTally* tally, const std::string& nonce,
                  int streams, int64_t records) {
  const SteadyClock::time_point start = SteadyClock::now();
  std::vector<std::thread> threads;
  for (int s = 0; s < streams; ++s) {
    threads.emplace_back([&, s] {
      grpc::ClientContext ctx;
      client.Prepare(&ctx, absl::Minutes(10));
      v1::RecordExecutionsResponse response;
      auto writer = client.telemetry().StreamExecutions(&ctx, &response);
      int64_t harvestable = 0;
      v1::ExecutionRecord record;  // refilled in place for each write
      for (int64_t i = 0; i < records; ++i) {
        bool good = false;
        FillRecord(tally->pipeline, nonce, static_cast<int64_t>(s) * records + i, &record, &good);
        if (!writer->Write(record)) break;  // the server ended the call; Finish says why
        harvestable += good ? 1 : 0;
      }
      writer->WritesDone();
      grpc::Status status = writer->Finish();
      if (!status.ok()) {
        tally->Fail(status);
        // Chunks committed before the failure are stored, but not acknowledged to us.
        return;
      }
      tally->acked += response.accepted();
      tally->harvested += response.harvested();
      tally->rejected += response.rejected_size();
      if (response.rejected_size() == 0) tally->expected_harvest += harvestable;
    });
  }
  for (auto& th : threads) th.join();
  return SecondsSince(start);
}

// ---------------------------------------------------------------------------------------
// Verification: what the server stored per pipeline against what it acknowledged.

bool Verify(const client::Client& client, std::vector<PhaseTally*> tallies) {
  bool all_ok = true;
  std::printf("\nverification (GetUsageStats over the last hour, per phase pipeline):\n");
  for (PhaseTally* t : tallies) {
    grpc::ClientContext ctx;
    client.Prepare(&ctx, absl::Minutes(2));
    v1::GetUsageStatsRequest request;
    request.set_pipeline_name(t->pipeline);
    request.mutable_window()->set_seconds(3600);
    v1::UsageStats stats;
    grpc::Status status = client.telemetry().GetUsageStats(&ctx, request, &stats);
    if (!status.ok()) {
      std::printf("  %-18s GetUsageStats failed: %s\n", t->pipeline.c_str(),
                  status.error_message().c_str());
      all_ok = false;
      continue;
    }
    const bool stored_ok = stats.executions() == t->acked.load();
    const bool harvest_ok = t->harvested.load() == t->expected_harvest.load() &&
                            stats.new_examples_since_optimization() == t->harvested.load();
    const bool clean = t->failed_calls.load() == 0 && t->rejected.load() == 0;
    std::printf("  %-18s acked %8lld stored %8lld %s | harvested %6lld (expected %6lld, "
                "examples stored %6lld) %s%s\n",
                t->pipeline.c_str(), static_cast<long long>(t->acked.load()),
                static_cast<long long>(stats.executions()), stored_ok ? "OK" : "MISMATCH",
                static_cast<long long>(t->harvested.load()),
                static_cast<long long>(t->expected_harvest.load()),
                static_cast<long long>(stats.new_examples_since_optimization()),
                harvest_ok ? "OK" : "MISMATCH",
                clean ? "" : absl::StrCat(" | failed calls ", t->failed_calls.load(),
                                          ", rejected records ", t->rejected.load(), " (",
                                          t->first_error, ")").c_str());
    all_ok = all_ok && stored_ok && harvest_ok && clean;
  }
  return all_ok;
}

// ---------------------------------------------------------------------------------------
// Breakdown without gRPC, in this process.

void Breakdown(int batch_size, testutil::PostgresServer* postgres) {
  std::printf("\nbreakdown (this process, no gRPC):\n");
  const std::string nonce = RandomHexId(6);
  // Validation (proto -> JSON per Struct, as the handlers do for every record).
  {
    const int n = 20000;
    std::vector<v1::ExecutionRecord> records;
    records.reserve(n);
    size_t bytes = 0;
    for (int i = 0; i < n; ++i) {
      bool good = false;
      records.push_back(MakeRecord("bench_breakdown", nonce, i, &good));
      bytes += records.back().ByteSizeLong();
    }
    api::ExecutionRecordLimits limits;
    const absl::Time now = absl::Now();
    std::vector<learning::ExecutionInput> inputs;
    inputs.reserve(n);
    const SteadyClock::time_point start = SteadyClock::now();
    for (const auto& r : records) {
      auto input = api::ValidateExecutionRecord(r, "record", limits, now);
      if (input.ok()) inputs.push_back(*std::move(input));
    }
    const double validate = SecondsSince(start);
    const SteadyClock::time_point make_start = SteadyClock::now();
    for (int i = 0; i < 2000; ++i) {
      bool good = false;
      v1::ExecutionRecord r = MakeRecord("bench_breakdown", nonce, i, &good);
      (void)r;
    }
    const double make = SecondsSince(make_start) / 2000;
    std::printf("  record: %.0f bytes serialized; building one (client) %.1f us\n",
                static_cast<double>(bytes) / n, make * 1e6);
    std::printf("  ValidateExecutionRecord (3 Structs -> JSON text): %.1f us/record\n",
                validate / n * 1e6);
  }
  // The ingestor's group commit on a SQLite file (or PostgreSQL database), without gRPC.
  testutil::TempDir dir;
  absl::StatusOr<std::unique_ptr<store::Store>> store;
  const char* store_name = postgres != nullptr ? "PostgresStore" : "SqliteStore";
  if (postgres != nullptr) {
    auto dsn = postgres->CreateDatabase("breakdown");
    if (dsn.ok()) {
      store::PostgresStore::Options store_options;
      store_options.dsn = *dsn;
      store = store::PostgresStore::Create(store_options);
    } else {
      store = dsn.status();
    }
  } else {
    store::SqliteStore::Options store_options;
    store_options.path = dir.File("breakdown.sqlite");
    store = store::SqliteStore::Create(store_options);
  }
  if (!store.ok()) {
    std::printf("  store: %s\n", store.status().ToString().c_str());
    return;
  }
  learning::ExecutionIngestor::Options ingest_options;
  ingest_options.store = store->get();
  auto ingestor = learning::ExecutionIngestor::Create(ingest_options);
  if (!ingestor.ok()) {
    std::printf("  ingestor: %s\n", ingestor.status().ToString().c_str());
    return;
  }
  for (int per_submission : {1, batch_size}) {
    const int64_t total = per_submission == 1 ? 20000 : 100000;
    // Inputs prepared first: this times Ingest (scoring, JSON dumps, harvest) + the commit.
    api::ExecutionRecordLimits limits;
    std::vector<std::vector<learning::ExecutionInput>> submissions;
    for (int64_t i = 0; i < total; i += per_submission) {
      std::vector<learning::ExecutionInput> s;
      for (int64_t j = i; j < i + per_submission && j < total; ++j) {
        bool good = false;
        auto input = api::ValidateExecutionRecord(
            MakeRecord(absl::StrCat("bench_breakdown_", per_submission),
                       absl::StrCat(nonce, "-", per_submission), j, &good),
            "record", limits, absl::Now());
        if (input.ok()) s.push_back(*std::move(input));
      }
      submissions.push_back(std::move(s));
    }
    std::atomic<int64_t> done{0};
    std::mutex mu;
    std::condition_variable cv;
    const SteadyClock::time_point start = SteadyClock::now();
    const double cpu_start = ClientCpuSeconds();
    // Submit with at most 16 submissions outstanding, like the unary phase (or 8 batches).
    const int64_t window = per_submission == 1 ? 16 : 8;
    int64_t submitted = 0;
    std::atomic<int64_t> completed_submissions{0};
    for (auto& s : submissions) {
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return submitted - completed_submissions.load() < window; });
      }
      ++submitted;
      absl::Status queued = (*ingestor)->Ingest(
          std::move(s), [&](std::vector<learning::IngestResult> results) {
            done += static_cast<int64_t>(results.size());
            std::lock_guard<std::mutex> lock(mu);
            ++completed_submissions;
            cv.notify_all();
          });
      if (!queued.ok()) {
        std::printf("  ingest: %s\n", queued.ToString().c_str());
        return;
      }
    }
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return completed_submissions.load() == submitted; });
    }
    const double wall = SecondsSince(start);
    const double cpu = ClientCpuSeconds() - cpu_start;
    std::printf("  ExecutionIngestor + %s, submissions of %d (%lld in flight): "
                "%.0f records/s, %.1f us CPU/record\n",
                store_name, per_submission, static_cast<long long>(window),
                static_cast<double>(done.load()) / wall, cpu / static_cast<double>(done.load()) * 1e6);
  }
  (*ingestor)->Stop();
  // Raw store inserts, rows prepared: the store part alone.
  {
    const int rows_per_txn = 500;
    std::vector<store::ExecutionRecordRow> rows;
    for (int i = 0; i < rows_per_txn; ++i) {
      bool good = false;
      auto input = api::ValidateExecutionRecord(
          MakeRecord("bench_breakdown_raw", nonce, i, &good), "record", api::ExecutionRecordLimits(), absl::Now());
      store::ExecutionRecordRow row;
      row.id = RandomHexId(16);
      row.record_id = input->record_id;
      row.pipeline_name = input->pipeline_name;
      row.success = input->success;
      row.quality_score = 5;
      row.input_json = input->input_json;
      row.output_json = input->output_json;
      row.metadata_json = input->metadata_json;
      row.time = absl::Now();
      rows.push_back(std::move(row));
    }
    const int txns = 100;
    const double client_cpu_start = ClientCpuSeconds();
    const double pg_cpu_start = postgres != nullptr ? PostgresCpuSeconds(postgres->pid()) : 0;
    const SteadyClock::time_point start = SteadyClock::now();
    for (int t = 0; t < txns; ++t) {
      for (int i = 0; i < rows_per_txn; ++i) {
        rows[static_cast<size_t>(i)].id = RandomHexId(16);
        rows[static_cast<size_t>(i)].record_id = absl::StrCat(nonce, "-", t, "-", i);
      }
      auto stored = (*store)->InsertExecutions(rows);
      if (!stored.ok()) {
        std::printf("  insert: %s\n", stored.status().ToString().c_str());
        return;
      }
    }
    const double wall = SecondsSince(start);
    const double rows_done = static_cast<double>(txns) * rows_per_txn;
    const double client_us = (ClientCpuSeconds() - client_cpu_start) / rows_done * 1e6;
    if (postgres != nullptr) {
      const double pg_us = (PostgresCpuSeconds(postgres->pid()) - pg_cpu_start) / rows_done * 1e6;
      std::printf("  PostgresStore::InsertExecutions CPU: %.1f us/row in this process + %.1f "
                  "us/row in PostgreSQL; CPU-bound ceiling on 2 idle cores: %.0f rows/s\n",
                  client_us, pg_us, 2e6 / (client_us + pg_us));
    }
    std::printf("  %s::InsertExecutions alone, %d rows/txn (no harvest): %.1f us/row, "
                "%.0f rows/s\n",
                store_name, rows_per_txn, wall / (txns * rows_per_txn) * 1e6, txns * rows_per_txn / wall);
  }
}

// ---------------------------------------------------------------------------------------

absl::StatusOr<Target> StartTarget(const Options& options, const testutil::TempDir& dir) {
  Target target;
  std::vector<std::string> store_args = {"--store.sqlite_path=" + dir.File("bench.sqlite")};
  std::string dsn;
  if (options.postgres) {
    auto postgres = testutil::PostgresServer::Start();
    if (!postgres.ok()) return postgres.status();
    target.postgres = *std::move(postgres);
    auto created = target.postgres->CreateDatabase("bench");
    if (!created.ok()) return created.status();
    dsn = *created;
    store_args = {"--store.driver=postgres", "--store.postgres_dsn=" + dsn};
  }
  if (options.in_process) {
    config::ServerConfig config = testutil::TestConfig(dir);
    if (options.postgres) {
      config.store.driver = "postgres";
      config.store.postgres_dsn = dsn;
    }
    auto server = testutil::InProcessServer::Start(config);
    if (!server.ok()) return server.status();
    target.in_process = std::move(*server);
    target.address = target.in_process->address();
    target.http_port = target.in_process->http_port();
    return target;
  }
  if (std::getenv("ELEXIRION_BINARY_DIR") == nullptr) {
    ::setenv("ELEXIRION_BINARY_DIR", ELEXIRION_DEFAULT_BINARY_DIR, 0);
  }
  std::vector<std::string> args = {"--grpc.listen=127.0.0.1:0", "--http.listen=127.0.0.1:0"};
  args.insert(args.end(), store_args.begin(), store_args.end());
  args.insert(args.end(), options.server_flags.begin(), options.server_flags.end());
  auto started = testutil::ServerProcess::Start(args);
  if (!started.ok()) return started.status();
  target.process = std::move(*started);
  target.address = target.process->address();
  target.http_port = target.process->http_port();
  target.pid = target.process->pid();
  return target;
}

int Run(const Options& options) {
  logging::SetMinLevel(logging::Level::kWarning);
  testutil::TempDir dir;
  auto target = StartTarget(options, dir);
  if (!target.ok()) {
    std::fprintf(stderr, "server: %s\n", target.status().ToString().c_str());
    return 1;
  }
  client::Client::Options client_options;
  client_options.address = target->address;
  client_options.deadline = absl::Seconds(60);
  auto client_or = client::Client::Create(client_options);
  if (!client_or.ok()) {
    std::fprintf(stderr, "client: %s\n", client_or.status().ToString().c_str());
    return 1;
  }
  const client::Client& client = **client_or;
  const std::string nonce = RandomHexId(6);
  {
    bool good = false;
    std::printf("record_execution: %s, %s, "
                "loopback, %u cores; records of %zu bytes (input+output+metadata Struct), "
                "10%% harvestable\n",
                options.in_process ? "server in this process" : "elexirion-server as a separate process",
                options.postgres ? "PostgreSQL 15 on loopback (fsync=off, synchronous_commit=on)"
                                 : "SQLite in a temp dir (WAL, synchronous=NORMAL)",
                std::thread::hardware_concurrency(),
                MakeRecord("bench_unary", nonce, 12345, &good).ByteSizeLong());
  }
  std::vector<std::unique_ptr<PhaseTally>> tallies;
  auto tally = [&](const std::string& pipeline) {
    tallies.push_back(std::make_unique<PhaseTally>());
    tallies.back()->pipeline = pipeline;
    return tallies.back().get();
  };
  bool unary_met = false, batch_met = false;

  // Warm-up: connection, statement caches, page cache.
  {
    PhaseTally* warm = tally("bench_warmup");
    UnaryDriver driver(client, warm, nonce, options.concurrency);
    driver.Run(absl::Seconds(30), 2000);
  }

  // 1. Unary.
  {
    PhaseTally* t = tally("bench_unary");
    std::printf("\n1. RecordExecution (unary), %d calls in flight, %d s:\n", options.concurrency,
                options.unary_seconds);
    PhaseProbe probe(*target);
    UnaryDriver driver(client, t, nonce, options.concurrency);
    const double wall = driver.Run(absl::Seconds(options.unary_seconds));
    Latencies lat = driver.AllLatencies();
    const double rate = static_cast<double>(t->acked.load()) / wall;
    unary_met = rate >= kUnaryTarget && t->failed_calls.load() == 0;
    std::printf("    %lld records acked in %.2f s: %.0f records/s   ack latency p50 %.2f ms  "
                "p99 %.2f ms  max %.2f ms%s\n",
                static_cast<long long>(t->acked.load()), wall, rate, lat.Pct(0.50),
                lat.Pct(0.99), lat.Max(),
                t->failed_calls.load() > 0 ? absl::StrCat("  (", t->failed_calls.load(),
                                                          " FAILED: ", t->first_error, ")").c_str()
                                           : "");
    std::printf("    target >= %.0f records/s: %s\n", kUnaryTarget, unary_met ? "MET" : "NOT MET");
    probe.Report(t->acked.load());
  }

  // 2. Batches.
  std::printf("\n2. RecordExecutions, batches of %d, %d s per concurrency:\n", options.batch_size,
              options.batch_seconds);
  double best_batch = 0;
  for (int c : options.batch_concurrency) {
    PhaseTally* t = tally(absl::StrCat("bench_batch_c", c));
    PhaseProbe probe(*target);
    BatchResult r = RunBatches(client, t, nonce, c, options.batch_size,
                               absl::Seconds(options.batch_seconds));
    const double rate = static_cast<double>(t->acked.load()) / r.wall;
    if (t->failed_calls.load() == 0) best_batch = std::max(best_batch, rate);
    std::printf("  concurrency %d: %lld records in %zu batches, %.2f s: %.0f records/s   batch "
                "ack p50 %.2f ms  p99 %.2f ms  max %.2f ms%s\n",
                c, static_cast<long long>(t->acked.load()), r.latencies.ms.size(), r.wall, rate,
                r.latencies.Pct(0.50), r.latencies.Pct(0.99), r.latencies.Max(),
                t->failed_calls.load() > 0 ? absl::StrCat("  (", t->failed_calls.load(),
                                                          " FAILED: ", t->first_error, ")").c_str()
                                           : "");
    probe.Report(t->acked.load());
  }
  batch_met = best_batch >= kBatchTarget;
  std::printf("  target >= %.0f records/s batched (best concurrency): %.0f records/s, %s\n",
              kBatchTarget, best_batch, batch_met ? "MET" : "NOT MET");

  // 3. Streams.
  {
    PhaseTally* t = tally("bench_stream");
    std::printf("\n3. StreamExecutions, %d stream(s) of %lld records:\n", options.streams,
                static_cast<long long>(options.stream_records));
    PhaseProbe probe(*target);
    const double wall = RunStreams(client, t, nonce, options.streams, options.stream_records);
    std::printf("    %lld records acked in %.2f s: %.0f records/s%s\n",
                static_cast<long long>(t->acked.load()), wall,
                static_cast<double>(t->acked.load()) / wall,
                t->failed_calls.load() > 0 ? absl::StrCat("  (", t->failed_calls.load(),
                                                          " FAILED: ", t->first_error, ")").c_str()
                                           : "");
    probe.Report(t->acked.load());
  }

  std::vector<PhaseTally*> all;
  for (auto& t : tallies) all.push_back(t.get());
  const bool verified = Verify(client, all);
  if (options.breakdown) Breakdown(options.batch_size, target->postgres.get());

  std::printf("\nsummary: unary c=%d target %s, batched target %s, stored == acknowledged: %s\n",
              options.concurrency, unary_met ? "MET" : "NOT MET", batch_met ? "MET" : "NOT MET",
              verified ? "yes" : "NO");
  return verified ? 0 : 1;
}

}  // namespace
}  // namespace elexirion

int main(int argc, char** argv) {
  elexirion::Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : "";
    auto number = [&](auto* out) {
      if (!absl::SimpleAtoi(value, out)) {
        std::fprintf(stderr, "%s: expected a number, got \"%s\"\n", arg.c_str(), value);
        std::exit(2);
      }
      ++i;
    };
    if (arg == "--seconds") {
      number(&options.unary_seconds);
    } else if (arg == "--batch-seconds") {
      number(&options.batch_seconds);
    } else if (arg == "--stream-records") {
      number(&options.stream_records);
    } else if (arg == "--streams") {
      number(&options.streams);
    } else if (arg == "--concurrency") {
      number(&options.concurrency);
    } else if (arg == "--batch-size") {
      number(&options.batch_size);
    } else if (arg == "--batch-concurrency") {
      options.batch_concurrency.clear();
      for (absl::string_view part : absl::StrSplit(value, ',')) {
        int c = 0;
        if (absl::SimpleAtoi(part, &c) && c > 0) options.batch_concurrency.push_back(c);
      }
      ++i;
    } else if (arg == "--in-process") {
      options.in_process = true;
    } else if (arg == "--no-breakdown") {
      options.breakdown = false;
    } else if (arg == "--postgres") {
      options.postgres = true;
    } else if (arg == "--server-flag") {
      if (value[0] == '\0') {
        std::fprintf(stderr, "--server-flag: expected --key=value\n");
        std::exit(2);
      }
      options.server_flags.push_back(value);
      ++i;
    } else {
      std::fprintf(stderr,
                   "usage: record_execution_bench [--seconds N] [--batch-seconds N] "
                   "[--stream-records N] [--streams N] [--concurrency N] [--batch-size N] "
                   "[--batch-concurrency 1,4,8,16] [--in-process] [--no-breakdown] [--postgres]\n"
                   "       [--server-flag --key=value]...\n");
      return 2;
    }
  }
  return elexirion::Run(options);
}
