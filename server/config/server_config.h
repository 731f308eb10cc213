// The server's configuration: one typed struct with documented defaults, loaded from a YAML
// file, the environment and command-line flags (flags > env > file > defaults) and validated
// once at start-up.
//
// Every scalar key has three spellings:
//   YAML file:   grpc: { listen: "0.0.0.0:50051" }
//   environment: ELEXIRION_GRPC_LISTEN=0.0.0.0:50051
//   flag:        --grpc.listen=0.0.0.0:50051   (or --grpc.listen 0.0.0.0:50051)
// The `providers:` section (LLM provider instances) is YAML-only and is parsed by the llm
// module; provider keys come from env vars or secret files named there, never from this file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"

namespace elexirion::config {

struct GrpcConfig {
  // host:port the gRPC server listens on; port 0 picks a free port (tests).
  std::string listen = "0.0.0.0:50051";
  // Largest request / response message accepted or sent.
  int64_t max_receive_message_bytes = 16 << 20;
  int64_t max_send_message_bytes = 16 << 20;
  // Unary RPCs being handled at once; excess calls fail fast with RESOURCE_EXHAUSTED.
  int64_t max_inflight_rpcs = 512;
  // Concurrent server streams (StreamProgress watchers) across all connections.
  int64_t max_streams = 4096;
  // HTTP/2 streams per connection.
  int64_t max_concurrent_streams_per_connection = 1024;
  // Server-initiated keepalive pings and how long to wait for their ack.
  absl::Duration keepalive_time = absl::Minutes(2);
  absl::Duration keepalive_timeout = absl::Seconds(20);
  // Smallest ping interval tolerated from clients (the Elixir client pings every 10-30 s);
  // clients must not ping more often than this.
  absl::Duration min_client_ping_interval = absl::Seconds(10);
  // Close connections after this age (+ grace) so new replicas get traffic; 0 = never.
  absl::Duration max_connection_age = absl::ZeroDuration();
  absl::Duration max_connection_age_grace = absl::Seconds(30);
  // Serve grpc.reflection.v1alpha (lets grpcurl discover the API).
  bool enable_reflection = true;
};

struct HttpConfig {
  // host:port of the HTTP endpoint with /metrics, /healthz and /readyz; empty disables it.
  std::string listen = "0.0.0.0:9090";
  int64_t threads = 2;
};

struct AuthConfig {
  // File with one bearer token per line ('#' comments allowed). Empty: none.
  std::string tokens_file;
  // Name of an environment variable holding comma-separated bearer tokens.
  std::string tokens_env = "ELEXIRION_AUTH_TOKENS";
  // Resolved at load time from the two sources above (never logged). Empty = auth disabled.
  std::vector<std::string> tokens;
};

struct TlsConfig {
  // PEM files. cert_file and key_file enable TLS; client_ca_file with require_client_cert
  // enables mTLS.
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;
  bool require_client_cert = false;
};

struct StoreConfig {
  // "sqlite" (embedded default) or "postgres" (several replicas).
  std::string driver = "sqlite";
  // SQLite database file; parent directories are created.
  std::string sqlite_path = "./var/elexirion.sqlite";
  // libpq connection string for driver "postgres" (may hold a password: treated as secret).
  std::string postgres_dsn;
  // Connections each replica keeps to PostgreSQL (callers beyond wait for a free one).
  int64_t postgres_pool_size = 8;
  // Execution-ingestion commits in flight at once on PostgreSQL, 1..64 (a second one starts
  // only under load). They take connections from the pool, so the server uses at most
  // postgres_pool_size - 1 of them (at least 1): other work always finds a connection.
  int64_t postgres_ingest_writers = 2;
  absl::Duration busy_timeout = absl::Seconds(5);
};

struct ShutdownConfig {
  // After SIGTERM health turns NOT_SERVING at once; wait this long for load balancers to
  // notice before refusing new calls.
  absl::Duration drain_delay = absl::ZeroDuration();
  // Time in-flight RPCs get to finish; later they are cancelled.
  absl::Duration grace = absl::Seconds(10);
};

struct PipelineConfig {
  // Directory that `file` prompt parts are confined to; empty disables file parts.
  std::string prompts_dir = "./prompts";
  // Directory for steps' `output_to_file`; empty ignores output_to_file.
  std::string output_dir;
  // Largest pipeline YAML accepted.
  int64_t max_yaml_bytes = 1 << 20;
  // YAML nodes visited when loading one pipeline, alias expansions included. 40k keeps every
  // rejection of hostile input well under 100 ms.
  int64_t max_yaml_nodes = 40000;
  // Most steps in one pipeline, steps inside loops and nested pipelines included.
  int64_t max_steps = 500;
  // Loops and nested pipelines inside one another (pipeline_ex's max_depth default).
  int64_t max_nesting_depth = 10;
  // Iterations of one for_loop / while_loop (pipeline_ex caps while loops at 1000).
  int64_t max_loop_iterations = 1000;
  // Steps one execution runs, loop iterations and nested pipelines included.
  int64_t max_executed_steps = 10000;
  // Threads running ExecutePipeline calls (gRPC threads never wait on a model).
  int64_t execute_threads = 16;
  // ExecutePipeline calls waiting for a thread; beyond this RESOURCE_EXHAUSTED.
  int64_t max_queued_executions = 256;
  // Execution time limit when the caller sets no deadline.
  absl::Duration default_execute_timeout = absl::Minutes(10);
};

struct JobsConfig {
  // Optimization jobs run at once in this process.
  int64_t workers = 2;
  // A running job's lease; a crashed worker's job is recovered after this long.
  absl::Duration lease = absl::Seconds(30);
  // Lease renewal period; also how fast a running job notices a cancel (<= lease / 3).
  absl::Duration heartbeat = absl::Milliseconds(500);
  // Idle workers look for claimable jobs this often.
  absl::Duration poll = absl::Milliseconds(500);
  // OptimizeModule answers RESOURCE_EXHAUSTED while this many jobs are queued.
  int64_t max_queued = 1000;
  // A job whose worker crashed this many times fails.
  int64_t max_attempts = 5;
  // A running job whose LLM provider is unavailable (connect errors, 5xx, 429, cooldown)
  // pauses, probes with backoff and resumes when it answers; it fails after this long.
  absl::Duration max_provider_outage = absl::Minutes(15);
};

struct LogConfig {
  // debug | info | warning | error
  std::string level = "info";
};

struct ServerConfig {
  GrpcConfig grpc;
  HttpConfig http;
  AuthConfig auth;
  TlsConfig tls;
  StoreConfig store;
  ShutdownConfig shutdown;
  PipelineConfig pipeline;
  JobsConfig jobs;
  LogConfig log;
  // LLM provider settings for the llm module: a mapping holding whichever of the top-level
  // keys `providers`, `default_provider`, `step_types` and `model_aliases` the file has
  // (see server/llm/providers_config.h).
  YAML::Node llm;
  // Raw `learning:` section for the continuous-learning module (Null when absent).
  YAML::Node learning;
};

// Where configuration comes from. `args` excludes argv[0].
struct ConfigSources {
  std::string file_path;  // may also be given as --config in args
  std::vector<std::string> args;
  // Environment as NAME=VALUE strings (defaults to the process environment when empty and
  // use_process_env is true).
  std::vector<std::string> env;
  bool use_process_env = true;
};

// Loads, merges and validates. Errors are INVALID_ARGUMENT naming the key and its source,
// e.g. "grpc.max_receive_message_bytes (flag): must be a positive size, got \"-1\"".
absl::StatusOr<ServerConfig> LoadServerConfig(const ConfigSources& sources);

// Cross-field and range checks; called by LoadServerConfig.
absl::Status Validate(const ServerConfig& config);

// The effective configuration with secrets redacted (token values, DSN passwords), for the
// start-up log line.
nlohmann::json EffectiveConfigForLog(const ServerConfig& config);

// Help text listing every key with its default.
std::string ConfigHelp();

}  // namespace elexirion::config
