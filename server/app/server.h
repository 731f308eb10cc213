// The elexirion server: owns and wires every module (store, services, metrics endpoint) and
// runs the gRPC server. Lifecycle: Create() -> Start() -> ... -> Shutdown().
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "server/api/admission.h"
#include "server/api/auth.h"
#include "server/config/server_config.h"

namespace elexirion {
class Clock;
class ThreadPool;
}  // namespace elexirion
namespace elexirion::store {
class Store;
}
namespace elexirion::llm {
class ProviderRouter;
}
namespace elexirion::pipeline {
class PipelineExecutor;
}
namespace elexirion::jobs {
class JobEventBus;
class JobEventRelay;
class JobRunner;
class JobWorkerPool;
struct OptimizationEnvironment;
}  // namespace elexirion::jobs
namespace elexirion::metrics {
class HttpServer;
}
namespace elexirion::learning {
class ExecutionIngestor;
class LearningScheduler;
struct LearningConfig;
}  // namespace elexirion::learning

namespace elexirion::app {

inline constexpr char kVersion[] = "0.1.0";

// Opens (and migrates) the store `config` names: SQLite or PostgreSQL. Errors name the
// setting at fault (e.g. store.postgres_dsn, password redacted). `existing_only` (checks):
// a missing SQLite file, or a PostgreSQL database at another schema version than this
// binary's, is FAILED_PRECONDITION instead of being created or migrated.
absl::StatusOr<std::unique_ptr<store::Store>> OpenStore(const config::StoreConfig& config,
                                                        bool existing_only = false);
class StoreReadiness;

// Thread safe: Shutdown() may be called from any thread, once or more.
class Server {
 public:
  struct Options {
    config::ServerConfig config;
    // What runs optimization jobs; nullptr = the built-in optimization engine. Tests inject
    // runners here.
    std::shared_ptr<jobs::JobRunner> job_runner;
    // Runs the continuous-learning scheduler's loop (tests turn it off and drive it through
    // scheduler()).
    bool start_scheduler = true;
    // The scheduler's clock; nullptr = real time.
    Clock* scheduler_clock = nullptr;
  };

  // Opens the store and builds the services. Nothing listens yet.
  static absl::StatusOr<std::unique_ptr<Server>> Create(Options options);
  ~Server();

  // Binds gRPC and HTTP and starts serving. UNAVAILABLE when a port is taken.
  absl::Status Start();

  // Graceful stop: health NOT_SERVING, new calls refused, in-flight calls get
  // `shutdown.grace` to finish, then everything is closed.
  void Shutdown();

  // Blocks until Shutdown() has completed.
  void Wait();

  int grpc_port() const { return grpc_port_; }
  int http_port() const;
  store::Store* store() const { return store_.get(); }
  llm::ProviderRouter* llm() const { return router_.get(); }
  learning::LearningScheduler* scheduler() const { return scheduler_.get(); }
  jobs::JobEventBus* bus() const { return bus_.get(); }

 private:
  explicit Server(Options options);
  absl::Status Readiness() const;

  Options options_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<llm::ProviderRouter> router_;
  std::unique_ptr<pipeline::PipelineExecutor> executor_;
  std::unique_ptr<ThreadPool> execute_pool_;
  std::unique_ptr<jobs::JobEventBus> bus_;
  // Only with store.driver=postgres: events of jobs running on other replicas.
  std::unique_ptr<jobs::JobEventRelay> relay_;
  std::unique_ptr<StoreReadiness> store_readiness_;
  std::shared_ptr<jobs::JobRunner> job_runner_;
  std::unique_ptr<jobs::JobWorkerPool> workers_;
  std::unique_ptr<jobs::OptimizationEnvironment> optimization_;
  std::unique_ptr<learning::LearningConfig> learning_;
  std::unique_ptr<learning::ExecutionIngestor> ingestor_;
  std::unique_ptr<learning::LearningScheduler> scheduler_;
  std::unique_ptr<api::Authenticator> auth_;
  std::unique_ptr<api::Admission> admission_;
  std::vector<std::unique_ptr<grpc::Service>> services_;
  std::unique_ptr<grpc::Server> grpc_server_;
  std::unique_ptr<metrics::HttpServer> http_server_;
  int grpc_port_ = 0;

  absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace elexirion::app
