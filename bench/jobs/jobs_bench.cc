// jobs_bench: 20 concurrent BootstrapFewShot jobs against the fake provider at 50 ms latency
// (real HTTP), then StreamProgress fan-out to 1,000 watchers of one job.
// Usage: jobs_bench [workers=4] [jobs=20] [watchers=1000] [--server-process] [--channels=N]
//                   [--watcher-threads=N | --callback-watchers] [--watch-latency=MS]
//                   [--watch-threads=N]
//                   [--postgres] [--replicas=N]
//   default           the server runs in this process; RSS is the whole process (server, fake
//                     provider and clients share it).
//   --server-process  the server is a separate elexirion-server process (on port 0, its own
//                     SQLite file); watchers, clients and the fake provider stay here, so the
//                     fan-out crosses a real process boundary and the server's RSS is its own.
//   --channels=N      watchers spread over N gRPC channels (default 1: one HTTP/2 connection).
//   --watcher-threads=N  watchers on the completion-queue API, drained by N threads (default
//                     2); --callback-watchers: on the callback API (a reactor each) instead.
//   --postgres        starts a PostgreSQL server (the test fixture) and runs the server
//                     process(es) on it (implies --server-process).
//   --watch-latency=MS  the fake provider's latency while the watched job runs (default 50;
//                     real providers take seconds, so real jobs emit far fewer events/s).
//   --watch-threads=N  the watched job's num_threads (default 8). With 1 it bootstraps one
//                     example at a time: a progress event per example, evenly spaced.
//   --replicas=N      N server processes on that one PostgreSQL (needs --postgres), each with
//                     `workers` workers; jobs are submitted round-robin and followed where
//                     submitted, watchers connect to the first replica.
// Needs ELEXIRION_SOURCE_DIR (or run from the repository root) for examples/code_analysis.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>
#include <type_traits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "tests/fakes/fake_provider_server.h"
#include "tests/testutil/postgres_server.h"
#include "tests/testutil/test_server.h"

namespace elexirion {
namespace {

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Root() {
  const char* dir = std::getenv("ELEXIRION_SOURCE_DIR");
  return dir != nullptr ? dir : ".";
}

double MaxRssMb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;
}

// A /proc/<pid>/status field in MB (VmRSS: now, VmHWM: peak); 0 when unreadable.
double ProcStatusMb(pid_t pid, const std::string& field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::atof(line.c_str() + field.size() + 1) / 1024;
  }
  return 0;
}

// `tag` is prefixed to every example's code so jobs do not share the persistent LLM cache.
v1::OptimizeModuleRequest Request(const std::string& name, const std::string& tag) {
  const std::string base = Root() + "/examples/code_analysis/";
  v1::OptimizeModuleRequest request;
  request.mutable_pipeline()->set_yaml(Read(base + "pipeline.yaml"));
  request.set_program_name(name);
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(base + "examples")) {
    files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::string json = Read(f.string());
    const std::string needle = "\"code\": \"";
    size_t at = json.find(needle);
    if (at != std::string::npos) json.insert(at + needle.size(), "# " + tag + "\\n");
    (void)google::protobuf::util::JsonStringToMessage(
        json, request.mutable_trainset()->mutable_inline_()->add_examples());
  }
  request.mutable_metric()->mutable_exact_match()->set_field("severity");
  request.mutable_optimizer()->mutable_bootstrap_few_shot()->set_max_bootstrapped_demos(4);
  return request;
}

// Follows a job's stream to its end; returns the events.
std::vector<v1::ProgressEvent> Follow(client::Client& client, const std::string& id) {
  grpc::ClientContext context;
  client.Prepare(&context, absl::Minutes(30));
  v1::StreamProgressRequest request;
  request.set_job_id(id);
  auto reader = client.optimizer().StreamProgress(&context, request);
  std::vector<v1::ProgressEvent> events;
  v1::ProgressEvent event;
  while (reader->Read(&event)) events.push_back(event);
  reader->Finish();
  return events;
}

// One watcher on the callback API: StreamProgress (Message = v1::ProgressEvent) or
// StreamProgressBatches (v1::ProgressEventBatch). Latency of an event: its `time` (stamped
// by the job's worker just before it appends the event to the store, on the same machine's
// clock) to the moment this process receives it: store append + publish + fan-out + network
// + client delivery, so an upper bound on publish-to-receipt. Only events stamped after the
// watcher joined count (older ones are replay, not live fan-out).
class WatcherBase {
 public:
  virtual ~WatcherBase() = default;
  // Waits for the stream's end; true when it ended OK.
  bool Wait() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done_));
    return ok_;
  }
  // Valid after Wait(): (event time, receipt) of the events stamped after it joined.
  const std::vector<std::pair<absl::Time, absl::Time>>& live() const { return live_; }
  absl::Time first_received() const { return first_received_; }
  int64_t messages() const { return messages_; }

 protected:
  explicit WatcherBase() : joined_(absl::Now()) {}
  // A message read now: a v1::ProgressEvent or a v1::ProgressEventBatch.
  template <typename Message>
  void Received(const Message& message) {
    const absl::Time received = absl::Now();
    ++messages_;
    if constexpr (std::is_same_v<Message, v1::ProgressEvent>) {
      Received(message, received);
    } else {
      for (const auto& event : message.events()) Received(event, received);
    }
  }
  void Ended(const grpc::Status& status) {
    absl::MutexLock lock(&mu_);
    ok_ = status.ok();
    done_ = true;
  }

 private:
  void Received(const v1::ProgressEvent& event, absl::Time received) {
    const absl::Time sent =
        absl::FromUnixNanos(google::protobuf::util::TimeUtil::TimestampToNanoseconds(event.time()));
    if (first_received_ == absl::InfinitePast()) first_received_ = received;
    if (sent >= joined_) live_.emplace_back(sent, received);
  }
  int64_t messages_ = 0;
  const absl::Time joined_;
  // Reads are sequential: no lock needed.
  std::vector<std::pair<absl::Time, absl::Time>> live_;
  absl::Time first_received_ = absl::InfinitePast();
  absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool ok_ ABSL_GUARDED_BY(mu_) = false;
};

template <typename Message>
class Watcher final : public WatcherBase, public grpc::ClientReadReactor<Message> {
 public:
  Watcher(client::Client& client, const std::string& job_id) {
    client.Prepare(&context_, absl::Minutes(30));
    request_.set_job_id(job_id);
    if constexpr (std::is_same_v<Message, v1::ProgressEvent>) {
      client.optimizer().async()->StreamProgress(&context_, &request_, this);
    } else {
      client.optimizer().async()->StreamProgressBatches(&context_, &request_, this);
    }
    this->StartRead(&message_);
    this->StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    Received(message_);
    this->StartRead(&message_);
  }
  void OnDone(const grpc::Status& status) override { Ended(status); }

 private:
  grpc::ClientContext context_;
  v1::StreamProgressRequest request_;
  Message message_;
};

// Watchers on the completion-queue API, spread over `threads` threads that each drain their
// own queue: a completed read is handled on the thread that polled it, with no hand-off to a
// callback thread. That costs the watcher process about a third less CPU per message than the
// callback API, CPU the server shares on a small machine (real watchers sit on other
// machines). Message as in Watcher.
template <typename Message>
class CqWatchers final {
 public:
  CqWatchers(std::vector<std::unique_ptr<client::Client>>& channels, const std::string& job_id,
             int watchers, int threads) {
    queues_.resize(static_cast<size_t>(std::max(1, threads)));
    for (auto& queue : queues_) queue = std::make_unique<grpc::CompletionQueue>();
    streams_.reserve(static_cast<size_t>(watchers));
    for (int i = 0; i < watchers; ++i) {
      streams_.push_back(std::make_unique<Stream>());
      Stream& stream = *streams_.back();
      client::Client& channel = *channels[static_cast<size_t>(i) % channels.size()];
      grpc::CompletionQueue* queue = queues_[static_cast<size_t>(i) % queues_.size()].get();
      channel.Prepare(&stream.context, absl::Minutes(30));
      v1::StreamProgressRequest request;
      request.set_job_id(job_id);
      if constexpr (std::is_same_v<Message, v1::ProgressEvent>) {
        stream.reader =
            channel.optimizer().PrepareAsyncStreamProgress(&stream.context, request, queue);
      } else {
        stream.reader =
            channel.optimizer().PrepareAsyncStreamProgressBatches(&stream.context, request, queue);
      }
      stream.reader->StartCall(&stream);
    }
    for (size_t q = 0; q < queues_.size(); ++q) {
      const size_t streams =
          (static_cast<size_t>(watchers) + queues_.size() - 1 - q) / queues_.size();
      if (streams == 0) {
        queues_[q]->Shutdown();
      }
      threads_.emplace_back([queue = queues_[q].get(), streams] { Drain(queue, streams); });
    }
  }
  ~CqWatchers() {
    for (auto& t : threads_) t.join();
  }
  size_t size() const { return streams_.size(); }
  WatcherBase& operator[](size_t i) { return *streams_[i]; }

 private:
  enum class Step { kStarting, kReading, kFinishing };
  struct Stream final : WatcherBase {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientAsyncReader<Message>> reader;
    Message message;
    grpc::Status status;
    Step step = Step::kStarting;
    // Handles one completion; false once the stream has ended.
    bool Advance(bool ok) {
      if (step == Step::kFinishing) {
        Ended(status);
        return false;
      }
      if (step == Step::kReading && ok) Received(message);
      if (!ok) {
        step = Step::kFinishing;
        reader->Finish(&status, this);
      } else {
        step = Step::kReading;
        reader->Read(&message, this);
      }
      return true;
    }
  };
  // Runs `queue`'s completions until its `streams` have ended, then shuts it down.
  static void Drain(grpc::CompletionQueue* queue, size_t streams) {
    void* tag;
    bool ok;
    size_t ended = 0;
    while (queue->Next(&tag, &ok)) {
      if (!static_cast<Stream*>(tag)->Advance(ok) && ++ended == streams) queue->Shutdown();
    }
  }

  std::vector<std::unique_ptr<grpc::CompletionQueue>> queues_;
  std::vector<std::unique_ptr<Stream>> streams_;
  std::vector<std::thread> threads_;
};

struct BenchOptions {
  int workers = 4;
  int jobs = 20;
  int watchers = 1000;
  bool server_process = false;
  int channels = 1;
  int watch_latency_ms = 50;  // the fake's latency while the watched job runs
  int watch_threads = 0;      // the watched job's num_threads (0: the optimizer's default, 8)
  bool postgres = false;      // a PostgreSQL server started here (the test fixture)
  int replicas = 1;           // server processes on one store
  int cq_threads = 2;         // watchers on the completion-queue API (0: the callback API)
};

int Run(const BenchOptions& options) {
  const int workers = options.workers, jobs = options.jobs, watchers = options.watchers;
  auto fake = fakes::FakeProviderServer::Start();
  if (!fake.ok()) return 1;
  (*fake)->SetLatency(absl::Milliseconds(50));
  (*fake)->SetHandler([](const fakes::RecordedRequest&) {
    return fakes::FakeResponse::Text(
        "[[ ## findings ## ]]\nno issues\n\n[[ ## recommendations ## ]]\nnone\n\n"
        "[[ ## severity ## ]]\nmedium\n\n[[ ## completed ## ]]\n");
  });
  testutil::TempDir dir;
  std::string key = dir.Write("anthropic.key", "sk-ant-bench-jobs");
  const std::string providers = absl::StrCat(
      "providers:\n  anthropic:\n    kind: anthropic\n    base_url: ", (*fake)->base_url(),
      "\n    api_key_file: ", key, "\n");
  std::unique_ptr<testutil::InProcessServer> in_process;
  std::unique_ptr<testutil::PostgresServer> postgres;
  std::vector<std::unique_ptr<testutil::ServerProcess>> processes;
  std::vector<std::string> addresses;
  const bool separate = options.server_process || options.postgres || options.replicas > 1;
  if (separate) {
    if (std::getenv("ELEXIRION_BINARY_DIR") == nullptr) {
      ::setenv("ELEXIRION_BINARY_DIR", ELEXIRION_DEFAULT_BINARY_DIR, 0);
    }
    std::string config_file =
        dir.Write("config.yaml", absl::StrCat(providers, "step_types:\n  claude: anthropic\n"));
    std::vector<std::string> args = {"--config",
                                     config_file,
                                     "--grpc.listen=127.0.0.1:0",
                                     "--http.listen=127.0.0.1:0",
                                     absl::StrCat("--jobs.workers=", workers),
                                     "--jobs.poll=50ms",
                                     "--jobs.heartbeat=200ms"};
    if (options.postgres) {
      auto pg = testutil::PostgresServer::Start();
      if (!pg.ok()) {
        std::fprintf(stderr, "postgres: %s\n", pg.status().ToString().c_str());
        return 1;
      }
      postgres = std::move(*pg);
      auto dsn = postgres->CreateDatabase("bench");
      if (!dsn.ok()) {
        std::fprintf(stderr, "postgres: %s\n", dsn.status().ToString().c_str());
        return 1;
      }
      args.push_back("--store.driver=postgres");
      args.push_back("--store.postgres_dsn=" + *dsn);
    } else {
      args.push_back("--store.sqlite_path=" + dir.File("bench.sqlite"));
    }
    for (int i = 0; i < options.replicas; ++i) {
      auto started = testutil::ServerProcess::Start(args, absl::Seconds(60));
      if (!started.ok()) {
        std::fprintf(stderr, "server process: %s\n", started.status().ToString().c_str());
        return 1;
      }
      addresses.push_back((*started)->address());
      processes.push_back(std::move(*started));
    }
  } else {
    config::ServerConfig config = testutil::TestConfig(dir);
    config.jobs.workers = workers;
    config.jobs.poll = absl::Milliseconds(50);
    config.jobs.heartbeat = absl::Milliseconds(200);
    config.llm = YAML::Load(providers);
    auto server = testutil::InProcessServer::Start(config);
    if (!server.ok()) {
      std::fprintf(stderr, "server: %s\n", server.status().ToString().c_str());
      return 1;
    }
    in_process = std::move(*server);
    addresses.push_back(in_process->address());
  }
  auto connect = [&](size_t replica) -> std::unique_ptr<client::Client> {
    client::Client::Options o;
    o.address = addresses[replica % addresses.size()];
    auto c = client::Client::Create(o);
    if (!c.ok()) {
      std::fprintf(stderr, "client: %s\n", c.status().ToString().c_str());
      std::exit(1);
    }
    return std::move(*c);
  };
  std::vector<std::unique_ptr<client::Client>> replica_clients;
  for (size_t i = 0; i < addresses.size(); ++i) replica_clients.push_back(connect(i));
  client::Client* client = replica_clients[0].get();
  auto print_rss = [&](const char* when) {
    if (!processes.empty()) {
      std::printf("rss %s:", when);
      for (const auto& p : processes) {
        std::printf(" server %.1f MB (peak %.1f MB),", ProcStatusMb(p->pid(), "VmRSS"),
                    ProcStatusMb(p->pid(), "VmHWM"));
      }
      std::printf(" bench process %.1f MB\n", MaxRssMb());
    } else {
      std::printf("rss %s: %.1f MB (server, fake and clients in one process)\n", when, MaxRssMb());
    }
  };
  std::printf(
      "mode: %s, store %s, %d replica(s) x %d workers, %d watcher channel(s), %s\n",
      separate ? "servers in separate processes" : "in-process server",
      options.postgres ? "postgres" : "sqlite", static_cast<int>(addresses.size()), workers,
      options.channels,
      options.cq_threads > 0
          ? absl::StrCat("watchers on the CQ API (", options.cq_threads, " threads)").c_str()
          : "watchers on the callback API");
  print_rss("after start");

  // Part 1: concurrent jobs, submitted round-robin over the replicas, each followed on the
  // replica it was submitted to (which need not be the one running it).
  auto start = std::chrono::steady_clock::now();
  std::vector<std::string> ids;
  std::vector<std::chrono::steady_clock::time_point> submitted;
  for (int i = 0; i < jobs; ++i) {
    client::Client& to = *replica_clients[static_cast<size_t>(i) % replica_clients.size()];
    grpc::ClientContext context;
    to.Prepare(&context);
    v1::Job job;
    auto request = Request(absl::StrCat("bench_", i), absl::StrCat("job ", i));
    submitted.push_back(std::chrono::steady_clock::now());
    grpc::Status status = to.optimizer().OptimizeModule(&context, request, &job);
    if (!status.ok()) {
      std::fprintf(stderr, "submit: %s\n", status.error_message().c_str());
      return 1;
    }
    ids.push_back(job.id());
  }
  std::atomic<int> succeeded{0};
  std::vector<double> job_seconds(ids.size(), 0);
  std::vector<std::thread> followers;
  for (size_t i = 0; i < ids.size(); ++i) {
    followers.emplace_back([&, i] {
      auto events = Follow(*replica_clients[i % replica_clients.size()], ids[i]);
      job_seconds[i] =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - submitted[i]).count();
      if (!events.empty() && events.back().has_state_changed() &&
          events.back().state_changed().state() == v1::JOB_STATE_SUCCEEDED) {
        ++succeeded;
      }
    });
  }
  for (auto& t : followers) t.join();
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  int calls = (*fake)->request_count();
  const int per_job_parallelism = 8;  // optimizer num_threads default
  const int all_workers = workers * static_cast<int>(addresses.size());
  double bound = calls * 0.050 / (all_workers * per_job_parallelism);
  std::sort(job_seconds.begin(), job_seconds.end());
  auto job_pct = [&](double p) {
    return job_seconds[std::min(job_seconds.size() - 1,
                                static_cast<size_t>(p * job_seconds.size()))];
  };
  std::printf("jobs: %d submitted, %d succeeded, %d replica(s) x %d workers\n", jobs,
              succeeded.load(), static_cast<int>(addresses.size()), workers);
  std::printf(
      "wall %.2f s, %.2f jobs/s (%.1f jobs/min), %d LLM calls, concurrency bound "
      "%.2f s (calls x 50 ms / (all workers x %d)), ratio %.2f\n",
      wall, jobs / wall, jobs / wall * 60, calls, bound, per_job_parallelism, wall / bound);
  std::printf("job latency (submit -> terminal event at the follower): p50 %.2f s, p99 %.2f s\n",
              job_pct(0.50), job_pct(0.99));
  print_rss("after jobs");

  // Part 2: watchers on one running job. Each watcher is a callback-API stream, so 1,000 of
  // them cost the bench process a few threads, not a thread each: receipt is when gRPC hands
  // the event to the watcher, not when the OS gets around to one of 1,000 blocked readers.
  (*fake)->SetLatency(absl::Milliseconds(options.watch_latency_ms));
  // Server CPU (user + system) of the first server process, in seconds; 0 in-process.
  auto server_cpu = [&]() -> double {
    if (processes.empty()) return 0;
    std::ifstream in(absl::StrCat("/proc/", processes[0]->pid(), "/stat"));
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));
    std::string field;
    double ticks = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {
      if (i == 14 || i == 15) ticks += std::atof(field.c_str());  // utime, stime
    }
    return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
  };
  auto own_cpu = [] {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
           (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  };
  // Watchers on the first replica (with several, the job may run on another).
  std::vector<std::unique_ptr<client::Client>> channels;
  for (int i = 0; i < std::max(1, options.channels); ++i) channels.push_back(connect(0));
  for (const bool batches : {false, true}) {
    std::printf("\n%s: %d watchers of one job\n",
                batches ? "StreamProgressBatches (every ready event per message)"
                        : "StreamProgress (one event per message)",
                watchers);
    const double cpu_before = server_cpu();
    const double own_cpu_before = own_cpu();
    grpc::ClientContext context;
    client->Prepare(&context);
    v1::Job job;
    // Its own tag: the batches job must not be answered from the first one's LLM cache.
    auto request = Request(batches ? "bench_watched_batches" : "bench_watched",
                           batches ? "watched_batches" : "watched");
    if (options.watch_threads > 0)
      request.mutable_optimizer()->set_num_threads(options.watch_threads);
    if (!client->optimizer().OptimizeModule(&context, request, &job).ok()) return 1;
    std::vector<std::unique_ptr<WatcherBase>> callback_watchers;
    std::unique_ptr<CqWatchers<v1::ProgressEvent>> cq_single;
    std::unique_ptr<CqWatchers<v1::ProgressEventBatch>> cq_batches;
    std::vector<WatcherBase*> watching;
    watching.reserve(watchers);
    const absl::Time watchers_started = absl::Now();
    if (options.cq_threads > 0) {
      if (batches) {
        cq_batches = std::make_unique<CqWatchers<v1::ProgressEventBatch>>(
            channels, job.id(), watchers, options.cq_threads);
        for (size_t i = 0; i < cq_batches->size(); ++i) watching.push_back(&(*cq_batches)[i]);
      } else {
        cq_single = std::make_unique<CqWatchers<v1::ProgressEvent>>(channels, job.id(), watchers,
                                                                    options.cq_threads);
        for (size_t i = 0; i < cq_single->size(); ++i) watching.push_back(&(*cq_single)[i]);
      }
    } else {
      for (int i = 0; i < watchers; ++i) {
        client::Client& channel = *channels[static_cast<size_t>(i) % channels.size()];
        if (batches) {
          callback_watchers.push_back(
              std::make_unique<Watcher<v1::ProgressEventBatch>>(channel, job.id()));
        } else {
          callback_watchers.push_back(
              std::make_unique<Watcher<v1::ProgressEvent>>(channel, job.id()));
        }
        watching.push_back(callback_watchers.back().get());
      }
    }
    int finished_ok = 0;
    absl::Time all_joined = absl::InfinitePast();  // every watcher had its first event
    for (auto& w : watching) {
      if (w->Wait()) ++finished_ok;
      all_joined = std::max(all_joined, w->first_received());
    }
    const double server_cpu_s = server_cpu() - cpu_before;
    const double own_cpu_s = own_cpu() - own_cpu_before;
    // All live events, and those stamped after every watcher was connected and replayed (the
    // steady state, without the 1,000 stream set-ups competing for the same CPU).
    std::vector<double> latencies_ms, steady_ms;
    for (auto& w : watching) {
      for (const auto& [sent, received] : w->live()) {
        const double ms = absl::ToDoubleMilliseconds(received - sent);
        latencies_ms.push_back(ms);
        if (sent >= all_joined) steady_ms.push_back(ms);
      }
    }
    std::sort(latencies_ms.begin(), latencies_ms.end());
    std::sort(steady_ms.begin(), steady_ms.end());
    auto pct_of = [](const std::vector<double>& v, double p) {
      if (v.empty()) return 0.0;
      return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
    };
    auto pct = [&](double p) { return pct_of(latencies_ms, p); };
    v1::Job watched = testutil::GetJob(*client, job.id());
    const double job_s = absl::ToDoubleSeconds(
        absl::FromUnixNanos(
            google::protobuf::util::TimeUtil::TimestampToNanoseconds(watched.end_time())) -
        absl::FromUnixNanos(
            google::protobuf::util::TimeUtil::TimestampToNanoseconds(watched.create_time())));
    std::printf("watched job: %lld events in %.2f s (%.0f events/s, %.0f writes/s to watchers)\n",
                static_cast<long long>(watched.last_event_seq()), job_s,
                watched.last_event_seq() / std::max(job_s, 1e-3),
                watched.last_event_seq() * watchers / std::max(job_s, 1e-3));
    std::printf("watchers: %d, %d streams ended OK, %zu live events measured\n", watchers,
                finished_ok, latencies_ms.size());
    std::printf(
        "fan-out latency (event time in the server -> receipt in the watcher): "
        "p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
        pct(0.50), pct(0.99), latencies_ms.empty() ? 0.0 : latencies_ms.back());
    std::printf("join: every watcher had its replay %.0f ms after the first connected\n",
                absl::ToDoubleMilliseconds(all_joined - watchers_started));
    std::printf(
        "steady state (events stamped after all joined): %zu measured, p50 %.2f ms, "
        "p99 %.2f ms, max %.2f ms\n",
        steady_ms.size(), pct_of(steady_ms, 0.50), pct_of(steady_ms, 0.99),
        steady_ms.empty() ? 0.0 : steady_ms.back());
    int64_t messages = 0;
    for (auto& w : watching) messages += w->messages();
    const size_t deliveries = static_cast<size_t>(watched.last_event_seq()) * watchers;
    std::printf("messages: %lld for %zu event deliveries (%.2f events per message)\n",
                static_cast<long long>(messages), deliveries,
                static_cast<double>(deliveries) / std::max<int64_t>(messages, 1));
    if (server_cpu_s > 0) {
      std::printf(
          "server CPU during the fan-out: %.2f s, %.1f us per event delivered to a "
          "watcher (%zu deliveries)\n",
          server_cpu_s, server_cpu_s * 1e6 / std::max<size_t>(deliveries, 1), deliveries);
      std::printf("bench process (watchers, fake provider) CPU meanwhile: %.2f s\n", own_cpu_s);
    }
    std::printf("target p99 < 100 ms: %s\n", pct(0.99) < 100 ? "met" : "NOT MET");
    print_rss("after watchers");
  }
  return 0;
}

}  // namespace
}  // namespace elexirion

int main(int argc, char** argv) {
  elexirion::BenchOptions options;
  int positional = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--server-process") {
      options.server_process = true;
    } else if (arg.rfind("--channels=", 0) == 0) {
      options.channels = std::atoi(arg.c_str() + 11);
    } else if (arg.rfind("--watch-threads=", 0) == 0) {
      options.watch_threads = std::atoi(arg.c_str() + 16);
    } else if (arg.rfind("--watch-latency=", 0) == 0) {
      options.watch_latency_ms = std::atoi(arg.c_str() + 16);
    } else if (arg.rfind("--watcher-threads=", 0) == 0) {
      options.cq_threads = std::atoi(arg.c_str() + 18);
    } else if (arg == "--callback-watchers") {
      options.cq_threads = 0;
    } else if (arg == "--postgres") {
      options.postgres = true;
    } else if (arg.rfind("--replicas=", 0) == 0) {
      options.replicas = std::max(1, std::atoi(arg.c_str() + 11));
    } else if (positional == 0) {
      options.workers = std::atoi(arg.c_str()), ++positional;
    } else if (positional == 1) {
      options.jobs = std::atoi(arg.c_str()), ++positional;
    } else {
      options.watchers = std::atoi(arg.c_str()), ++positional;
    }
  }
  if (options.replicas > 1 && !options.postgres) {
    std::fprintf(stderr, "--replicas=N needs --postgres (SQLite serves one process)\n");
    return 2;
  }
  return elexirion::Run(options);
}
