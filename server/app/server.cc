#include "server/app/server.h"

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "server/api/metrics_interceptor.h"
#include "server/api/optimize_request.h"
#include "server/api/services.h"
#include "server/app/store_readiness.h"
#include "server/common/ids.h"
#include "server/common/logging.h"
#include "server/common/status_macros.h"
#include "server/common/thread_pool.h"
#include "server/jobs/event_bus.h"
#include "server/jobs/event_relay.h"
#include "server/jobs/optimization_runner.h"
#include "server/jobs/pg_job_notifications.h"
#include "server/jobs/worker_pool.h"
#include "server/learning/execution_ingestor.h"
#include "server/learning/policy.h"
#include "server/learning/scheduler.h"
#include "server/learning/telemetry_metrics.h"
#include "server/llm/provider_router.h"
#include "server/llm/providers_config.h"
#include "server/llm/store_llm_cache.h"
#include "server/metrics/http_server.h"
#include "server/metrics/rpc_metrics.h"
#include "server/pipeline/executor.h"
#include "server/store/postgres_store.h"
#include "server/store/sqlite_store.h"

namespace elexirion::app {
namespace {

constexpr const char* kServiceNames[] = {
    "elexirion.v1.OptimizerService", "elexirion.v1.PipelineService", "elexirion.v1.ProgramService",
    "elexirion.v1.DatasetService", "elexirion.v1.TelemetryService"};

int ToMillis(absl::Duration d) {
  int64_t ms = absl::ToInt64Milliseconds(d);
  return ms > INT32_MAX ? INT32_MAX : static_cast<int>(ms);
}

absl::StatusOr<std::string> ReadPem(const std::string& path, const char* key) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return absl::InvalidArgumentError(absl::StrCat(key, ": cannot read ", path));
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> BuildCredentials(
    const config::TlsConfig& tls) {
  if (tls.cert_file.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions ssl(
      tls.require_client_cert ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                              : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  ASSIGN_OR_RETURN(pair.private_key, ReadPem(tls.key_file, "tls.key_file"));
  ASSIGN_OR_RETURN(pair.cert_chain, ReadPem(tls.cert_file, "tls.cert_file"));
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (!tls.client_ca_file.empty()) {
    ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPem(tls.client_ca_file, "tls.client_ca_file"));
    if (!tls.require_client_cert) {
      ssl.client_certificate_request = GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
    }
  }
  return grpc::SslServerCredentials(ssl);
}

// Builds the provider router over the persistent cache. Step types routed to an instance
// that cannot be used (its key is not set) fall back to the simulated model, so a server
// without keys still runs every pipeline, visibly marked simulated.
absl::StatusOr<std::unique_ptr<llm::ProviderRouter>> BuildRouter(const YAML::Node& node,
                                                                 store::Store* store) {
  ASSIGN_OR_RETURN(llm::ProvidersConfig providers, llm::ParseProvidersConfig(node));
  llm::ProviderRouter::Options options;
  options.config = std::move(providers);
  options.cache = std::make_shared<llm::StoreLlmCache>(store);
  return llm::ProviderRouter::Create(std::move(options));
}

std::string ProviderForStepType(const llm::ProviderRouter& router, const std::string& type) {
  auto instance = router.InstanceForStepType(type);
  if (!instance.ok()) return pipeline::DefaultProviderForStepType(type);
  if (!router.IsUsable(*instance) && router.IsUsable("simulated")) return "simulated";
  return *instance;
}

}  // namespace

absl::StatusOr<std::unique_ptr<store::Store>> OpenStore(const config::StoreConfig& config,
                                                        bool existing_only) {
  if (config.driver == "sqlite") {
    store::SqliteStore::Options options;
    options.path = config.sqlite_path;
    options.busy_timeout = config.busy_timeout;
    options.migrate = !existing_only;
    auto sqlite = store::SqliteStore::Create(options);
    if (!sqlite.ok()) {
      return absl::Status(sqlite.status().code(),
                          absl::StrCat("store.sqlite_path: ", sqlite.status().message()));
    }
    return std::unique_ptr<store::Store>(*std::move(sqlite));
  }
  if (config.driver == "postgres") {
    store::PostgresStore::Options options;
    options.dsn = config.postgres_dsn;
    options.migrate = !existing_only;
    options.pool_size = static_cast<int>(std::min<int64_t>(config.postgres_pool_size, 1000));
    auto postgres = store::PostgresStore::Create(options);
    if (!postgres.ok()) {
      // The store's messages carry the DSN with its password redacted.
      return absl::Status(postgres.status().code(),
                          absl::StrCat("store.postgres_dsn: ", postgres.status().message()));
    }
    return std::unique_ptr<store::Store>(*std::move(postgres));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("store.driver: must be sqlite or postgres, got \"", config.driver, "\""));
}

Server::Server(Options options) : options_(std::move(options)) {}

Server::~Server() { Shutdown(); }

absl::StatusOr<std::unique_ptr<Server>> Server::Create(Options options) {
  RETURN_IF_ERROR(config::Validate(options.config));
  std::unique_ptr<Server> server(new Server(std::move(options)));
  const config::ServerConfig& config = server->options_.config;
  metrics::InitRpcMetrics(kVersion);
  ASSIGN_OR_RETURN(server->store_, OpenStore(config.store));
  ASSIGN_OR_RETURN(server->router_, BuildRouter(config.llm, server->store_.get()));
  std::vector<std::string> simulated_step_types;
  for (const auto& [type, instance] : server->router_->config().step_types) {
    if (ProviderForStepType(*server->router_, type) == "simulated" && instance != "simulated") {
      simulated_step_types.push_back(type);
    }
  }
  if (!simulated_step_types.empty()) {
    logging::Warning("provider keys missing: these step types run on the simulated model",
                     {{"step_types", simulated_step_types}});
  }
  pipeline::PipelineExecutor::Options executor;
  executor.client = server->router_.get();
  executor.prompts_dir = config.pipeline.prompts_dir;
  if (!executor.prompts_dir.empty() && !std::filesystem::is_directory(executor.prompts_dir)) {
    logging::Warning("pipeline.prompts_dir does not exist: file prompt parts are disabled",
                     {{"prompts_dir", executor.prompts_dir}});
    executor.prompts_dir.clear();
  }
  executor.output_dir = config.pipeline.output_dir;
  executor.max_steps = static_cast<size_t>(config.pipeline.max_steps);
  executor.max_loop_iterations = static_cast<size_t>(config.pipeline.max_loop_iterations);
  executor.max_executed_steps = static_cast<size_t>(config.pipeline.max_executed_steps);
  llm::ProviderRouter* router = server->router_.get();
  executor.provider = [router](const std::string& type) {
    return ProviderForStepType(*router, type);
  };
  const std::string prompts_dir = executor.prompts_dir;
  ASSIGN_OR_RETURN(server->executor_, pipeline::PipelineExecutor::Create(std::move(executor)));
  server->execute_pool_ =
      std::make_unique<ThreadPool>(static_cast<int>(config.pipeline.execute_threads),
                                   static_cast<size_t>(config.pipeline.max_queued_executions));

  jobs::JobEventBus::Options bus;
  // Room for every job this replica's workers run at once, so none of them thrashes.
  bus.max_unwatched_jobs =
      std::max(bus.max_unwatched_jobs, 2 * static_cast<size_t>(config.jobs.workers));
  server->bus_ = std::make_unique<jobs::JobEventBus>(bus);
  if (config.store.driver == "postgres") {
    // Jobs run on any replica; watchers here follow them through the store's notifications.
    jobs::PgJobNotifications::Options listen;
    listen.dsn = config.store.postgres_dsn;
    jobs::JobEventRelay::Options relay;
    relay.store = server->store_.get();
    relay.bus = server->bus_.get();
    relay.source = std::make_unique<jobs::PgJobNotifications>(std::move(listen));
    ASSIGN_OR_RETURN(server->relay_, jobs::JobEventRelay::Create(std::move(relay)));
  }
  StoreReadiness::Options readiness;
  store::Store* store = server->store_.get();
  readiness.ping = [store] { return store->Ping(); };
  ASSIGN_OR_RETURN(server->store_readiness_, StoreReadiness::Create(std::move(readiness)));
  server->optimization_ = std::make_unique<jobs::OptimizationEnvironment>();
  server->optimization_->client = server->router_.get();
  server->optimization_->store = server->store_.get();
  server->optimization_->load_options.yaml.max_bytes =
      static_cast<size_t>(config.pipeline.max_yaml_bytes);
  server->optimization_->load_options.max_steps = static_cast<size_t>(config.pipeline.max_steps);
  server->optimization_->load_options.yaml.max_nodes =
      static_cast<size_t>(config.pipeline.max_yaml_nodes);
  server->optimization_->load_options.prompts_dir = prompts_dir;
  server->optimization_->load_options.max_nesting_depth =
      static_cast<int>(config.pipeline.max_nesting_depth);
  server->optimization_->load_options.max_loop_iterations =
      static_cast<size_t>(config.pipeline.max_loop_iterations);
  server->optimization_->prompts_dir = prompts_dir;
  server->optimization_->max_provider_outage = config.jobs.max_provider_outage;
  server->optimization_->provider_for_step = [router](const std::string& type) {
    return ProviderForStepType(*router, type);
  };
  server->job_runner_ = server->options_.job_runner;
  if (server->job_runner_ == nullptr) {
    server->job_runner_ = jobs::CreateOptimizationRunner(*server->optimization_);
  }
  jobs::JobWorkerPool::Options workers;
  workers.store = server->store_.get();
  workers.runner = server->job_runner_.get();
  workers.bus = server->bus_.get();
  workers.workers = static_cast<int>(config.jobs.workers);
  workers.lease = config.jobs.lease;
  workers.heartbeat = config.jobs.heartbeat;
  workers.poll = config.jobs.poll;
  workers.max_attempts = static_cast<int>(config.jobs.max_attempts);
  ASSIGN_OR_RETURN(server->workers_, jobs::JobWorkerPool::Create(std::move(workers)));

  server->auth_ = std::make_unique<api::Authenticator>(config.auth.tokens);
  server->admission_ =
      std::make_unique<api::Admission>(config.grpc.max_inflight_rpcs, config.grpc.max_streams);
  api::ApiContext api;
  api.auth = server->auth_.get();
  api.admission = server->admission_.get();
  api.store = server->store_.get();
  api.executor = server->executor_.get();
  api.execute_pool = server->execute_pool_.get();
  api.load_options.yaml.max_bytes = static_cast<size_t>(config.pipeline.max_yaml_bytes);
  api.load_options.max_steps = static_cast<size_t>(config.pipeline.max_steps);
  api.load_options.yaml.max_nodes = static_cast<size_t>(config.pipeline.max_yaml_nodes);
  api.load_options.prompts_dir = prompts_dir;
  api.load_options.max_nesting_depth = static_cast<int>(config.pipeline.max_nesting_depth);
  api.load_options.max_loop_iterations = static_cast<size_t>(config.pipeline.max_loop_iterations);
  api.default_execute_timeout = config.pipeline.default_execute_timeout;
  api.bus = server->bus_.get();
  api.workers = server->workers_.get();
  api.max_queued_jobs = config.jobs.max_queued;
  api.optimization = server->optimization_.get();
  ASSIGN_OR_RETURN(learning::LearningConfig learning,
                   learning::ParseLearningConfig(config.learning));
  server->learning_ = std::make_unique<learning::LearningConfig>(std::move(learning));
  learning::InitTelemetryMetrics(server->learning_->max_label_pipelines);
  learning::ExecutionIngestor::Options ingest;
  ingest.store = server->store_.get();
  ingest.config = *server->learning_;
  if (config.store.driver == "postgres") {
    ingest.writers = static_cast<int>(
        std::clamp<int64_t>(config.store.postgres_ingest_writers, 1,
                            std::max<int64_t>(config.store.postgres_pool_size - 1, 1)));
  }
  ASSIGN_OR_RETURN(server->ingestor_, learning::ExecutionIngestor::Create(std::move(ingest)));
  api.ingestor = server->ingestor_.get();
  api.learning = server->learning_.get();

  // Scheduled runs enter through OptimizeModule's own path (validation, backlog cap,
  // idempotency), so they are ordinary jobs in every respect.
  learning::LearningScheduler::Options scheduler;
  scheduler.store = server->store_.get();
  scheduler.clock = server->options_.scheduler_clock;
  scheduler.config = *server->learning_;
  scheduler.owner = absl::StrCat("replica-", RandomHexId(8));
  scheduler.submit =
      [api](const elexirion::v1::OptimizeModuleRequest& request) -> absl::StatusOr<std::string> {
    ASSIGN_OR_RETURN(store::JobRecord job, api::SubmitOptimizeJob(api, request));
    return job.id;
  };
  scheduler.on_usage = [](const learning::UsageStats& usage) { learning::PublishUsage(usage); };
  ASSIGN_OR_RETURN(server->scheduler_, learning::LearningScheduler::Create(std::move(scheduler)));

  server->services_.push_back(std::make_unique<api::OptimizerServiceImpl>(api));
  server->services_.push_back(std::make_unique<api::PipelineServiceImpl>(api));
  server->services_.push_back(std::make_unique<api::ProgramServiceImpl>(api));
  server->services_.push_back(std::make_unique<api::DatasetServiceImpl>(api));
  server->services_.push_back(std::make_unique<api::TelemetryServiceImpl>(api));
  return server;
}

absl::Status Server::Start() {
  const config::ServerConfig& config = options_.config;
  ASSIGN_OR_RETURN(auto credentials, BuildCredentials(config.tls));

  grpc::EnableDefaultHealthCheckService(true);
  if (config.grpc.enable_reflection) grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.grpc.listen, credentials, &grpc_port_);
  // Without this a second process could bind the same port silently (SO_REUSEPORT).
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.grpc.max_receive_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(config.grpc.max_send_message_bytes));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             static_cast<int>(config.grpc.max_concurrent_streams_per_connection));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, ToMillis(config.grpc.keepalive_time));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             ToMillis(config.grpc.keepalive_timeout));
  // Tolerate client keepalive pings (the Elixir client pings idle connections) down to the
  // configured interval, with or without calls in flight.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             ToMillis(config.grpc.min_client_ping_interval));
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  if (config.grpc.max_connection_age > absl::ZeroDuration()) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                               ToMillis(config.grpc.max_connection_age));
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                               ToMillis(config.grpc.max_connection_age_grace));
  }
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> factories;
  factories.push_back(std::make_unique<api::MetricsInterceptorFactory>());
  builder.experimental().SetInterceptorCreators(std::move(factories));
  for (auto& service : services_) builder.RegisterService(service.get());

  grpc_server_ = builder.BuildAndStart();
  if (grpc_server_ == nullptr || grpc_port_ == 0) {
    grpc_server_.reset();
    return absl::UnavailableError(absl::StrCat("grpc.listen ", config.grpc.listen,
                                               ": cannot bind (address in use or invalid)"));
  }
  workers_->Start();
  if (relay_ != nullptr) relay_->Start();
  if (options_.start_scheduler) RETURN_IF_ERROR(scheduler_->Start());
  auto* health = grpc_server_->GetHealthCheckService();
  health->SetServingStatus("", true);
  for (const char* name : kServiceNames) health->SetServingStatus(name, true);

  if (!config.http.listen.empty()) {
    metrics::HttpServer::Options http;
    http.listen = config.http.listen;
    http.threads = static_cast<int>(config.http.threads);
    http.readiness = [this] { return Readiness(); };
    auto http_server = metrics::HttpServer::Create(std::move(http));
    if (!http_server.ok()) {
      grpc_server_->Shutdown(std::chrono::system_clock::now());
      grpc_server_.reset();
      return http_server.status();
    }
    http_server_ = std::move(*http_server);
  }
  logging::Info("serving", {{"grpc_port", grpc_port_},
                            {"http_port", http_port()},
                            {"version", kVersion},
                            {"tls", !config.tls.cert_file.empty()},
                            {"auth", auth_->enabled()}});
  return absl::OkStatus();
}

int Server::http_port() const { return http_server_ ? http_server_->port() : 0; }

absl::Status Server::Readiness() const {
  if (admission_->draining()) return absl::UnavailableError("draining");
  return store_readiness_->Check();
}

void Server::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
  }
  const config::ShutdownConfig& config = options_.config.shutdown;
  if (grpc_server_ != nullptr) {
    logging::Info("shutting down", {{"grace", absl::FormatDuration(config.grace)},
                                    {"inflight_rpcs", admission_->inflight_unary()},
                                    {"open_streams", admission_->open_streams()}});
    // Withdraw from load balancing first, then stop admitting work.
    grpc_server_->GetHealthCheckService()->Shutdown();
    admission_->StartDraining();
    if (config.drain_delay > absl::ZeroDuration()) absl::SleepFor(config.drain_delay);
    // Let our in-flight calls finish within the grace period. gRPC's own Shutdown(deadline)
    // would also wait for idle client connections to go away, which can take the whole grace
    // period even with nothing in flight, so wait for our calls first and then close at once.
    const absl::Time deadline = absl::Now() + config.grace;
    // Progress streams are not waited for: they follow jobs that outlive this process, and
    // their watchers resume elsewhere from their last sequence number.
    while (absl::Now() < deadline && admission_->inflight_unary() > 0) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    grpc_server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
    grpc_server_->Wait();
  }
  // No new scheduled runs; records already acknowledged are durable, queued ones are committed.
  if (scheduler_ != nullptr) scheduler_->Stop();
  if (ingestor_ != nullptr) ingestor_->Stop();
  // Running jobs are interrupted and released to the queue for a restart or another replica.
  if (workers_ != nullptr) workers_->Stop();
  if (relay_ != nullptr) relay_->Stop();
  // civetweb's listener polls with a 2 s quantum, so this can take up to 2 s.
  http_server_.reset();
  execute_pool_.reset();  // runs what is left (nothing, once gRPC has drained)
  if (grpc_server_ != nullptr) logging::Info("stopped");
}

void Server::Wait() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&shut_down_));
}

}  // namespace elexirion::app
