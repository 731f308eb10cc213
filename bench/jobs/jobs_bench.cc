// jobs_bench: 20 concurrent BootstrapFewShot jobs against the fake provider at 50 ms latency
// (real HTTP), then StreamProgress fan-out to 1,000 watchers of one job.
// Usage: jobs_bench [workers=4] [jobs=20] [watchers=1000] [--server-process] [--channels=N]
//   default           the server runs in this process; RSS is the whole process (server, fake
//                     provider and clients share it).
//   --server-process  the server is a separate elexirion-server process (on port 0, its own
//                     SQLite file); watchers, clients and the fake provider stay here, so the
//                     fan-out crosses a real process boundary and the server's RSS is its own.
//   --channels=N      watchers spread over N gRPC channels (default 1: one HTTP/2 connection).
// Needs ELEXIRION_SOURCE_DIR (or run from the repository root) for examples/code_analysis.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "tests/fakes/fake_provider_server.h"
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

struct BenchOptions {
  int workers = 4;
  int jobs = 20;
  int watchers = 1000;
  bool server_process = false;
  int channels = 1;
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
  const std::string providers =
      absl::StrCat("providers:\n  anthropic:\n    kind: anthropic\n    base_url: ",
                   (*fake)->base_url(), "\n    api_key_file: ", key, "\n");
  std::unique_ptr<testutil::InProcessServer> in_process;
  std::unique_ptr<testutil::ServerProcess> process;
  std::string address;
  if (options.server_process) {
    if (std::getenv("ELEXIRION_BINARY_DIR") == nullptr) {
      ::setenv("ELEXIRION_BINARY_DIR", ELEXIRION_DEFAULT_BINARY_DIR, 0);
    }
    std::string config_file =
        dir.Write("config.yaml", absl::StrCat(providers, "step_types:\n  claude: anthropic\n"));
    auto started = testutil::ServerProcess::Start(
        {"--config", config_file, "--grpc.listen=127.0.0.1:0", "--http.listen=127.0.0.1:0",
         "--store.sqlite_path=" + dir.File("bench.sqlite"),
         absl::StrCat("--jobs.workers=", workers), "--jobs.poll=50ms",
         "--jobs.heartbeat=200ms"});
    if (!started.ok()) {
      std::fprintf(stderr, "server process: %s\n", started.status().ToString().c_str());
      return 1;
    }
    process = std::move(*started);
    address = process->address();
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
    address = in_process->address();
  }
  auto connect = [&]() -> std::unique_ptr<client::Client> {
    client::Client::Options o;
    o.address = address;
    auto c = client::Client::Create(o);
    if (!c.ok()) {
      std::fprintf(stderr, "client: %s\n", c.status().ToString().c_str());
      std::exit(1);
    }
    return std::move(*c);
  };
  auto client = connect();
  auto print_rss = [&](const char* when) {
    if (process != nullptr) {
      std::printf("rss %s: server %.1f MB (peak %.1f MB), bench process %.1f MB\n", when,
                  ProcStatusMb(process->pid(), "VmRSS"), ProcStatusMb(process->pid(), "VmHWM"),
                  MaxRssMb());
    } else {
      std::printf("rss %s: %.1f MB (server, fake and clients in one process)\n", when,
                  MaxRssMb());
    }
  };
  std::printf("mode: %s, %d watcher channel(s)\n",
              process != nullptr ? "server in a separate process" : "in-process server",
              options.channels);
  print_rss("after start");

  // Part 1: concurrent jobs.
  auto start = std::chrono::steady_clock::now();
  std::vector<std::string> ids;
  for (int i = 0; i < jobs; ++i) {
    grpc::ClientContext context;
    client->Prepare(&context);
    v1::Job job;
    auto request = Request(absl::StrCat("bench_", i), absl::StrCat("job ", i));
    grpc::Status status = client->optimizer().OptimizeModule(&context, request, &job);
    if (!status.ok()) {
      std::fprintf(stderr, "submit: %s\n", status.error_message().c_str());
      return 1;
    }
    ids.push_back(job.id());
  }
  std::atomic<int> succeeded{0};
  std::vector<std::thread> followers;
  for (const auto& id : ids) {
    followers.emplace_back([&, id] {
      auto events = Follow(*client, id);
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
  double bound = calls * 0.050 / (workers * per_job_parallelism);
  std::printf("jobs: %d submitted, %d succeeded, workers=%d\n", jobs, succeeded.load(), workers);
  std::printf("wall %.2f s, %.1f jobs/min, %d LLM calls, concurrency bound %.2f s "
              "(calls x 50 ms / (workers x %d)), ratio %.2f\n",
              wall, jobs / wall * 60, calls, bound, per_job_parallelism, wall / bound);
  print_rss("after jobs");

  // Part 2: watchers on one running job.
  grpc::ClientContext context;
  client->Prepare(&context);
  v1::Job job;
  auto request = Request("bench_watched", "watched");
  if (!client->optimizer().OptimizeModule(&context, request, &job).ok()) return 1;
  absl::Mutex mu;
  std::vector<double> latencies_ms;
  std::atomic<int> finished_ok{0};
  std::vector<std::unique_ptr<client::Client>> channels;
  for (int i = 0; i < std::max(1, options.channels); ++i) channels.push_back(connect());
  std::vector<std::thread> threads;
  threads.reserve(watchers);
  for (int i = 0; i < watchers; ++i) {
    client::Client& watcher_client = *channels[static_cast<size_t>(i) % channels.size()];
    threads.emplace_back([&] {
      auto joined = absl::Now();
      grpc::ClientContext ctx;
      watcher_client.Prepare(&ctx, absl::Minutes(30));
      v1::StreamProgressRequest req;
      req.set_job_id(job.id());
      auto reader = watcher_client.optimizer().StreamProgress(&ctx, req);
      std::vector<double> mine;
      v1::ProgressEvent event;
      while (reader->Read(&event)) {
        absl::Time received = absl::Now();
        absl::Time sent = absl::FromUnixNanos(
            google::protobuf::util::TimeUtil::TimestampToNanoseconds(event.time()));
        if (sent >= joined) mine.push_back(absl::ToDoubleMilliseconds(received - sent));
      }
      if (reader->Finish().ok()) ++finished_ok;
      absl::MutexLock lock(&mu);
      latencies_ms.insert(latencies_ms.end(), mine.begin(), mine.end());
    });
  }
  for (auto& t : threads) t.join();
  std::sort(latencies_ms.begin(), latencies_ms.end());
  auto pct = [&](double p) {
    if (latencies_ms.empty()) return 0.0;
    return latencies_ms[std::min(latencies_ms.size() - 1,
                                 static_cast<size_t>(p * latencies_ms.size()))];
  };
  std::printf("watchers: %d, %d streams ended OK, %zu live events measured\n", watchers,
              finished_ok.load(), latencies_ms.size());
  std::printf("fan-out latency (event time -> receive): p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
              pct(0.50), pct(0.99), latencies_ms.empty() ? 0.0 : latencies_ms.back());
  print_rss("after watchers");
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
    } else if (positional == 0) {
      options.workers = std::atoi(arg.c_str()), ++positional;
    } else if (positional == 1) {
      options.jobs = std::atoi(arg.c_str()), ++positional;
    } else {
      options.watchers = std::atoi(arg.c_str()), ++positional;
    }
  }
  return elexirion::Run(options);
}
