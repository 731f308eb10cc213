#include "server/config/server_config.h"

#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "server/common/logging.h"
#include "server/common/status_macros.h"

extern char** environ;

namespace elexirion::config {
namespace {

// ---- value parsers -------------------------------------------------------------------

absl::StatusOr<int64_t> ParseInt(absl::string_view text) {
  int64_t v;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &v)) {
    return absl::InvalidArgumentError(absl::StrCat("must be an integer, got \"", text, "\""));
  }
  return v;
}

// "16777216", "16MiB", "512KiB", "1GiB", "10MB" (decimal).
absl::StatusOr<int64_t> ParseSize(absl::string_view text) {
  std::string t = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  static const std::pair<const char*, int64_t> kUnits[] = {
      {"kib", 1LL << 10}, {"mib", 1LL << 20}, {"gib", 1LL << 30}, {"kb", 1000},
      {"mb", 1000000},    {"gb", 1000000000}, {"b", 1}};
  int64_t mult = 1;
  for (const auto& [suffix, m] : kUnits) {
    if (absl::EndsWith(t, suffix)) {
      t.resize(t.size() - absl::string_view(suffix).size());
      mult = m;
      break;
    }
  }
  int64_t v;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(t), &v) || v <= 0 ||
      v > (int64_t{1} << 40) / mult) {
    return absl::InvalidArgumentError(
        absl::StrCat("must be a positive size like 16MiB, got \"", text, "\""));
  }
  return v * mult;
}

absl::StatusOr<absl::Duration> ParseDurationValue(absl::string_view text) {
  absl::Duration d;
  std::string t(absl::StripAsciiWhitespace(text));
  if (t == "0") return absl::ZeroDuration();
  if (!absl::ParseDuration(t, &d) || d < absl::ZeroDuration() || d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("must be a duration like 10s or 500ms, got \"", text, "\""));
  }
  return d;
}

absl::StatusOr<bool> ParseBool(absl::string_view text) {
  std::string t = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  if (t == "true" || t == "1" || t == "yes" || t == "on") return true;
  if (t == "false" || t == "0" || t == "no" || t == "off") return false;
  return absl::InvalidArgumentError(absl::StrCat("must be true or false, got \"", text, "\""));
}

// ---- the key table ---------------------------------------------------------------------

struct Field {
  std::string key;
  std::string help;
  std::function<absl::Status(ServerConfig&, absl::string_view)> set;
  std::function<nlohmann::json(const ServerConfig&)> get;  // for the effective-config log
};

template <typename T>
Field StringField(std::string key, std::string help, T ServerConfig::*section,
                  std::string T::*member, bool secret = false) {
  return {key, std::move(help),
          [section, member](ServerConfig& c, absl::string_view v) {
            (c.*section).*member = std::string(v);
            return absl::OkStatus();
          },
          [section, member, secret](const ServerConfig& c) -> nlohmann::json {
            const std::string& v = (c.*section).*member;
            if (secret && !v.empty()) return "[REDACTED]";
            return v;
          }};
}

template <typename T>
Field IntField(std::string key, std::string help, T ServerConfig::*section,
               int64_t T::*member, bool size) {
  return {key, std::move(help),
          [section, member, size](ServerConfig& c, absl::string_view v) -> absl::Status {
            ASSIGN_OR_RETURN(int64_t parsed, size ? ParseSize(v) : ParseInt(v));
            (c.*section).*member = parsed;
            return absl::OkStatus();
          },
          [section, member](const ServerConfig& c) -> nlohmann::json {
            return (c.*section).*member;
          }};
}

template <typename T>
Field DurationField(std::string key, std::string help, T ServerConfig::*section,
                    absl::Duration T::*member) {
  return {key, std::move(help),
          [section, member](ServerConfig& c, absl::string_view v) -> absl::Status {
            ASSIGN_OR_RETURN(absl::Duration parsed, ParseDurationValue(v));
            (c.*section).*member = parsed;
            return absl::OkStatus();
          },
          [section, member](const ServerConfig& c) -> nlohmann::json {
            return absl::FormatDuration((c.*section).*member);
          }};
}

template <typename T>
Field BoolField(std::string key, std::string help, T ServerConfig::*section, bool T::*member) {
  return {key, std::move(help),
          [section, member](ServerConfig& c, absl::string_view v) -> absl::Status {
            ASSIGN_OR_RETURN(bool parsed, ParseBool(v));
            (c.*section).*member = parsed;
            return absl::OkStatus();
          },
          [section, member](const ServerConfig& c) -> nlohmann::json {
            return (c.*section).*member;
          }};
}

const std::vector<Field>& Fields() {
  static const auto* fields = new std::vector<Field>{
      StringField("grpc.listen", "gRPC host:port (port 0 = any free port)", &ServerConfig::grpc,
                  &GrpcConfig::listen),
      IntField("grpc.max_receive_message_bytes", "largest request accepted", &ServerConfig::grpc,
               &GrpcConfig::max_receive_message_bytes, true),
      IntField("grpc.max_send_message_bytes", "largest response sent", &ServerConfig::grpc,
               &GrpcConfig::max_send_message_bytes, true),
      IntField("grpc.max_inflight_rpcs", "unary RPCs handled at once; excess -> RESOURCE_EXHAUSTED",
               &ServerConfig::grpc, &GrpcConfig::max_inflight_rpcs, false),
      IntField("grpc.max_streams", "concurrent server streams", &ServerConfig::grpc,
               &GrpcConfig::max_streams, false),
      IntField("grpc.max_concurrent_streams_per_connection", "HTTP/2 streams per connection",
               &ServerConfig::grpc, &GrpcConfig::max_concurrent_streams_per_connection, false),
      DurationField("grpc.keepalive_time", "server keepalive ping interval", &ServerConfig::grpc,
                    &GrpcConfig::keepalive_time),
      DurationField("grpc.keepalive_timeout", "keepalive ack timeout", &ServerConfig::grpc,
                    &GrpcConfig::keepalive_timeout),
      DurationField("grpc.min_client_ping_interval", "smallest client ping interval tolerated",
                    &ServerConfig::grpc, &GrpcConfig::min_client_ping_interval),
      DurationField("grpc.max_connection_age", "close connections after this age (0 = never)",
                    &ServerConfig::grpc, &GrpcConfig::max_connection_age),
      DurationField("grpc.max_connection_age_grace", "grace after max_connection_age",
                    &ServerConfig::grpc, &GrpcConfig::max_connection_age_grace),
      BoolField("grpc.enable_reflection", "serve gRPC server reflection", &ServerConfig::grpc,
                &GrpcConfig::enable_reflection),
      StringField("http.listen", "HTTP host:port for /metrics /healthz /readyz (empty = off)",
                  &ServerConfig::http, &HttpConfig::listen),
      IntField("http.threads", "HTTP worker threads", &ServerConfig::http, &HttpConfig::threads,
               false),
      StringField("auth.tokens_file", "file with one bearer token per line", &ServerConfig::auth,
                  &AuthConfig::tokens_file),
      StringField("auth.tokens_env", "env var with comma-separated bearer tokens",
                  &ServerConfig::auth, &AuthConfig::tokens_env),
      StringField("tls.cert_file", "server certificate (PEM)", &ServerConfig::tls,
                  &TlsConfig::cert_file),
      StringField("tls.key_file", "server private key (PEM)", &ServerConfig::tls,
                  &TlsConfig::key_file),
      StringField("tls.client_ca_file", "CA for client certificates (PEM)", &ServerConfig::tls,
                  &TlsConfig::client_ca_file),
      BoolField("tls.require_client_cert", "require and verify client certificates (mTLS)",
                &ServerConfig::tls, &TlsConfig::require_client_cert),
      StringField("store.driver", "sqlite | postgres", &ServerConfig::store, &StoreConfig::driver),
      StringField("store.sqlite_path", "SQLite database file", &ServerConfig::store,
                  &StoreConfig::sqlite_path),
      StringField("store.postgres_dsn", "PostgreSQL connection string", &ServerConfig::store,
                  &StoreConfig::postgres_dsn, /*secret=*/true),
      IntField("store.postgres_pool_size", "connections to PostgreSQL per replica",
               &ServerConfig::store, &StoreConfig::postgres_pool_size, false),
      IntField("store.postgres_ingest_writers",
               "execution-ingestion commits in flight at once on PostgreSQL", &ServerConfig::store,
               &StoreConfig::postgres_ingest_writers, false),
      DurationField("store.busy_timeout", "wait for a locked database", &ServerConfig::store,
                    &StoreConfig::busy_timeout),
      DurationField("shutdown.drain_delay", "NOT_SERVING period before refusing calls",
                    &ServerConfig::shutdown, &ShutdownConfig::drain_delay),
      DurationField("shutdown.grace", "time in-flight RPCs get to finish", &ServerConfig::shutdown,
                    &ShutdownConfig::grace),
      StringField("pipeline.prompts_dir", "directory file prompt parts are confined to",
                  &ServerConfig::pipeline, &PipelineConfig::prompts_dir),
      StringField("pipeline.output_dir", "directory for output_to_file (empty = ignore)",
                  &ServerConfig::pipeline, &PipelineConfig::output_dir),
      IntField("pipeline.max_yaml_bytes", "largest pipeline YAML accepted", &ServerConfig::pipeline,
               &PipelineConfig::max_yaml_bytes, true),
      IntField("pipeline.max_yaml_nodes", "YAML nodes per pipeline, aliases expanded",
               &ServerConfig::pipeline, &PipelineConfig::max_yaml_nodes, false),
      IntField("pipeline.max_steps", "most steps in one pipeline", &ServerConfig::pipeline,
               &PipelineConfig::max_steps, false),
      IntField("pipeline.max_nesting_depth", "loops and nested pipelines inside one another",
               &ServerConfig::pipeline, &PipelineConfig::max_nesting_depth, false),
      IntField("pipeline.max_loop_iterations", "iterations of one for_loop or while_loop",
               &ServerConfig::pipeline, &PipelineConfig::max_loop_iterations, false),
      IntField("pipeline.max_executed_steps", "steps one execution runs, loops included",
               &ServerConfig::pipeline, &PipelineConfig::max_executed_steps, false),
      IntField("pipeline.execute_threads", "threads running ExecutePipeline",
               &ServerConfig::pipeline, &PipelineConfig::execute_threads, false),
      IntField("pipeline.max_queued_executions", "ExecutePipeline calls waiting for a thread",
               &ServerConfig::pipeline, &PipelineConfig::max_queued_executions, false),
      DurationField("pipeline.default_execute_timeout", "execution limit without a deadline",
                    &ServerConfig::pipeline, &PipelineConfig::default_execute_timeout),
      IntField("jobs.workers", "optimization jobs run at once", &ServerConfig::jobs,
               &JobsConfig::workers, false),
      DurationField("jobs.lease", "running job lease (crash recovery time)", &ServerConfig::jobs,
                    &JobsConfig::lease),
      DurationField("jobs.heartbeat", "lease renewal period (<= lease / 3)", &ServerConfig::jobs,
                    &JobsConfig::heartbeat),
      DurationField("jobs.poll", "idle workers look for jobs this often", &ServerConfig::jobs,
                    &JobsConfig::poll),
      IntField("jobs.max_queued", "queued jobs before OptimizeModule is refused",
               &ServerConfig::jobs, &JobsConfig::max_queued, false),
      IntField("jobs.max_attempts", "claims of one job before it fails", &ServerConfig::jobs,
               &JobsConfig::max_attempts, false),
      DurationField("jobs.max_provider_outage",
                    "a job paused for an unavailable provider fails after this long",
                    &ServerConfig::jobs, &JobsConfig::max_provider_outage),
      StringField("log.level", "debug | info | warning | error", &ServerConfig::log,
                  &LogConfig::level),
  };
  return *fields;
}

// Sections whose content belongs to another module: kept as raw YAML.
const std::map<std::string, YAML::Node ServerConfig::*>& RawSections() {
  static const auto* sections = new std::map<std::string, YAML::Node ServerConfig::*>{
      {"learning", &ServerConfig::learning},
  };
  return *sections;
}

// Top-level keys owned by the llm module's ProvidersConfig.
bool IsLlmKey(const std::string& name) {
  return name == "providers" || name == "default_provider" || name == "step_types" ||
         name == "model_aliases";
}

const Field* FindField(absl::string_view key) {
  for (const auto& f : Fields()) {
    if (f.key == key) return &f;
  }
  return nullptr;
}

std::string EnvName(const std::string& key) {
  std::string name = "ELEXIRION_" + key;
  for (auto& c : name) c = (c == '.' || c == '-') ? '_' : absl::ascii_toupper(c);
  return name;
}

absl::Status Apply(ServerConfig& config, const std::string& key, absl::string_view value,
                   absl::string_view source) {
  const Field* field = FindField(key);
  if (field == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(key, " (", source, "): unknown key"));
  }
  absl::Status s = field->set(config, value);
  if (!s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(key, " (", source, "): ", s.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": cannot read file \"", path, "\""));
  }
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string Mark(const YAML::Node& node) {
  const YAML::Mark m = node.Mark();
  if (m.line < 0) return "";
  return absl::StrCat(" (line ", m.line + 1, ", column ", m.column + 1, ")");
}

absl::Status ApplyFile(ServerConfig& config, const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path, "--config"));
  if (text.size() > (1 << 20)) {
    return absl::InvalidArgumentError(absl::StrCat("config file ", path, ": larger than 1 MiB"));
  }
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config file ", path, ": line ", e.mark.line + 1, ", column ", e.mark.column + 1, ": ",
        e.msg));
  }
  if (root.IsNull()) return absl::OkStatus();
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(absl::StrCat("config file ", path, ": must be a mapping"));
  }
  const std::string source = absl::StrCat("file ", path);
  for (const auto& section : root) {
    const std::string name = section.first.as<std::string>();
    if (IsLlmKey(name)) {
      config.llm[name] = YAML::Clone(section.second);
      continue;
    }
    auto raw = RawSections().find(name);
    if (raw != RawSections().end()) {
      config.*(raw->second) = YAML::Clone(section.second);
      continue;
    }
    if (!section.second.IsMap()) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, " (", source, Mark(section.first), "): unknown section"));
    }
    for (const auto& entry : section.second) {
      const std::string key = absl::StrCat(name, ".", entry.first.as<std::string>());
      if (!entry.second.IsScalar()) {
        return absl::InvalidArgumentError(absl::StrCat(
            key, " (", source, Mark(entry.second), "): must be a scalar value"));
      }
      absl::Status s = Apply(config, key, entry.second.Scalar(),
                             absl::StrCat(source, Mark(entry.second)));
      if (!s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

absl::Status ResolveTokens(AuthConfig& auth, const std::map<std::string, std::string>& env) {
  auth.tokens.clear();
  if (!auth.tokens_file.empty()) {
    ASSIGN_OR_RETURN(std::string text, ReadFile(auth.tokens_file, "auth.tokens_file"));
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      line = absl::StripAsciiWhitespace(line);
      if (line.empty() || line[0] == '#') continue;
      auth.tokens.emplace_back(line);
    }
    if (auth.tokens.empty()) {
      return absl::InvalidArgumentError("auth.tokens_file: file holds no token");
    }
  }
  if (!auth.tokens_env.empty()) {
    auto it = env.find(auth.tokens_env);
    if (it != env.end()) {
      for (absl::string_view t : absl::StrSplit(it->second, ',', absl::SkipWhitespace())) {
        auth.tokens.emplace_back(absl::StripAsciiWhitespace(t));
      }
    }
  }
  for (const auto& t : auth.tokens) {
    if (t.size() < 16) {
      return absl::InvalidArgumentError(
          "auth tokens: every token must be at least 16 characters");
    }
    logging::RegisterSecret(t);
  }
  return absl::OkStatus();
}

absl::Status ValidateListen(const std::string& key, const std::string& value, bool allow_empty) {
  if (value.empty()) {
    if (allow_empty) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(key, ": must not be empty"));
  }
  size_t colon = value.rfind(':');
  int port;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(value.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, ": must be host:port with a port in 0..65535, got \"", value, "\""));
  }
  return absl::OkStatus();
}

bool Readable(const std::string& path) { return ::access(path.c_str(), R_OK) == 0; }

}  // namespace

absl::Status Validate(const ServerConfig& c) {
  RETURN_IF_ERROR(ValidateListen("grpc.listen", c.grpc.listen, false));
  RETURN_IF_ERROR(ValidateListen("http.listen", c.http.listen, true));
  auto positive = [](const char* key, int64_t v, int64_t max) -> absl::Status {
    if (v <= 0 || v > max) {
      return absl::InvalidArgumentError(absl::StrCat(key, ": must be in 1..", max, ", got ", v));
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(positive("grpc.max_receive_message_bytes", c.grpc.max_receive_message_bytes,
                           1LL << 30));
  RETURN_IF_ERROR(
      positive("grpc.max_send_message_bytes", c.grpc.max_send_message_bytes, 1LL << 30));
  RETURN_IF_ERROR(positive("grpc.max_inflight_rpcs", c.grpc.max_inflight_rpcs, 1 << 20));
  RETURN_IF_ERROR(positive("grpc.max_streams", c.grpc.max_streams, 1 << 20));
  RETURN_IF_ERROR(positive("grpc.max_concurrent_streams_per_connection",
                           c.grpc.max_concurrent_streams_per_connection, 1 << 20));
  RETURN_IF_ERROR(positive("http.threads", c.http.threads, 256));
  RETURN_IF_ERROR(positive("pipeline.max_yaml_bytes", c.pipeline.max_yaml_bytes, 64LL << 20));
  RETURN_IF_ERROR(positive("pipeline.max_steps", c.pipeline.max_steps, 10000));
  RETURN_IF_ERROR(positive("pipeline.max_nesting_depth", c.pipeline.max_nesting_depth, 100));
  RETURN_IF_ERROR(
      positive("pipeline.max_loop_iterations", c.pipeline.max_loop_iterations, 1000000));
  RETURN_IF_ERROR(
      positive("pipeline.max_executed_steps", c.pipeline.max_executed_steps, 100000000));
  RETURN_IF_ERROR(positive("pipeline.max_yaml_nodes", c.pipeline.max_yaml_nodes, 10000000));
  RETURN_IF_ERROR(positive("pipeline.execute_threads", c.pipeline.execute_threads, 1024));
  RETURN_IF_ERROR(
      positive("pipeline.max_queued_executions", c.pipeline.max_queued_executions, 1 << 20));
  RETURN_IF_ERROR(positive("jobs.workers", c.jobs.workers, 256));
  RETURN_IF_ERROR(positive("jobs.max_queued", c.jobs.max_queued, 1 << 24));
  RETURN_IF_ERROR(positive("jobs.max_attempts", c.jobs.max_attempts, 100));
  if (c.jobs.lease < absl::Seconds(1)) {
    return absl::InvalidArgumentError("jobs.lease: must be at least 1s");
  }
  if (c.jobs.heartbeat <= absl::ZeroDuration() || c.jobs.heartbeat * 3 > c.jobs.lease) {
    return absl::InvalidArgumentError("jobs.heartbeat: must be positive and at most jobs.lease / 3");
  }
  if (c.jobs.max_provider_outage < absl::Seconds(1) ||
      c.jobs.max_provider_outage > absl::Hours(7 * 24)) {
    return absl::InvalidArgumentError("jobs.max_provider_outage: must be between 1s and 168h");
  }
  if (c.jobs.poll <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("jobs.poll: must be positive");
  }
  if (c.pipeline.default_execute_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("pipeline.default_execute_timeout: must be positive");
  }
  if (c.grpc.keepalive_time < absl::Seconds(10)) {
    return absl::InvalidArgumentError("grpc.keepalive_time: must be at least 10s");
  }
  if (c.grpc.keepalive_timeout < absl::Seconds(1)) {
    return absl::InvalidArgumentError("grpc.keepalive_timeout: must be at least 1s");
  }
  if (c.grpc.min_client_ping_interval < absl::Seconds(1)) {
    return absl::InvalidArgumentError("grpc.min_client_ping_interval: must be at least 1s");
  }
  if (c.tls.cert_file.empty() != c.tls.key_file.empty()) {
    return absl::InvalidArgumentError(
        "tls.cert_file and tls.key_file: set both to enable TLS, or neither");
  }
  for (const auto& [key, path] : {std::pair{"tls.cert_file", c.tls.cert_file},
                                  std::pair{"tls.key_file", c.tls.key_file},
                                  std::pair{"tls.client_ca_file", c.tls.client_ca_file}}) {
    if (!path.empty() && !Readable(path)) {
      return absl::InvalidArgumentError(absl::StrCat(key, ": cannot read \"", path, "\""));
    }
  }
  if (c.tls.require_client_cert && (c.tls.client_ca_file.empty() || c.tls.cert_file.empty())) {
    return absl::InvalidArgumentError(
        "tls.require_client_cert: needs tls.client_ca_file, tls.cert_file and tls.key_file");
  }
  if (c.store.driver == "sqlite") {
    if (c.store.sqlite_path.empty()) {
      return absl::InvalidArgumentError("store.sqlite_path: must not be empty");
    }
  } else if (c.store.driver == "postgres") {
    if (c.store.postgres_dsn.empty()) {
      return absl::InvalidArgumentError(
          "store.postgres_dsn: required when store.driver is postgres");
    }
    if (c.store.postgres_pool_size < 1) {
      return absl::InvalidArgumentError("store.postgres_pool_size: must be >= 1");
    }
    if (c.store.postgres_ingest_writers < 1 || c.store.postgres_ingest_writers > 64) {
      return absl::InvalidArgumentError(
          absl::StrCat("store.postgres_ingest_writers: must be in 1..64, got ",
                       c.store.postgres_ingest_writers));
    }
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "store.driver: must be sqlite or postgres, got \"", c.store.driver, "\""));
  }
  logging::Level level;
  if (!logging::ParseLevel(c.log.level, &level)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "log.level: must be debug, info, warning or error, got \"", c.log.level, "\""));
  }
  return absl::OkStatus();
}

absl::StatusOr<ServerConfig> LoadServerConfig(const ConfigSources& sources) {
  ServerConfig config;

  // Flags are parsed first (to find --config) but applied last.
  std::string file_path = sources.file_path;
  std::vector<std::pair<std::string, std::string>> flags;
  for (size_t i = 0; i < sources.args.size(); ++i) {
    absl::string_view arg = sources.args[i];
    if (!absl::ConsumePrefix(&arg, "--")) {
      return absl::InvalidArgumentError(
          absl::StrCat("argument \"", sources.args[i], "\": expected --key=value"));
    }
    std::string key, value;
    size_t eq = arg.find('=');
    if (eq != absl::string_view::npos) {
      key = std::string(arg.substr(0, eq));
      value = std::string(arg.substr(eq + 1));
    } else {
      key = std::string(arg);
      if (i + 1 >= sources.args.size()) {
        return absl::InvalidArgumentError(absl::StrCat("--", key, ": missing value"));
      }
      value = sources.args[++i];
    }
    if (key == "config") {
      file_path = value;
      continue;
    }
    if (FindField(key) == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("--", key, ": unknown flag"));
    }
    flags.emplace_back(key, value);
  }

  std::map<std::string, std::string> env;
  std::vector<std::string> env_list = sources.env;
  if (env_list.empty() && sources.use_process_env) {
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) env_list.emplace_back(*e);
  }
  for (const auto& entry : env_list) {
    size_t eq = entry.find('=');
    if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  if (file_path.empty()) {
    auto it = env.find("ELEXIRION_CONFIG");
    if (it != env.end()) file_path = it->second;
  }

  if (!file_path.empty()) RETURN_IF_ERROR(ApplyFile(config, file_path));
  for (const auto& field : Fields()) {
    auto it = env.find(EnvName(field.key));
    if (it != env.end()) {
      RETURN_IF_ERROR(Apply(config, field.key, it->second, absl::StrCat("env ", it->first)));
    }
  }
  for (const auto& [key, value] : flags) {
    RETURN_IF_ERROR(Apply(config, key, value, "flag"));
  }
  RETURN_IF_ERROR(ResolveTokens(config.auth, env));
  if (!config.store.postgres_dsn.empty()) logging::RegisterSecret(config.store.postgres_dsn);
  RETURN_IF_ERROR(Validate(config));
  return config;
}

nlohmann::json EffectiveConfigForLog(const ServerConfig& config) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& field : Fields()) out[field.key] = field.get(config);
  out["auth.enabled"] = !config.auth.tokens.empty();
  out["auth.token_count"] = config.auth.tokens.size();
  out["llm.configured"] = config.llm.IsDefined() && !config.llm.IsNull();
  for (const auto& [name, member] : RawSections()) {
    out[name + ".configured"] = (config.*member).IsDefined() && !(config.*member).IsNull();
  }
  return out;
}

std::string ConfigHelp() {
  std::string out =
      "Configuration keys (flags > environment > --config file > defaults).\n"
      "Flag --KEY=VALUE, environment ELEXIRION_KEY (dots as underscores), YAML section.key:\n";
  ServerConfig defaults;
  for (const auto& field : Fields()) {
    absl::StrAppend(&out, "  ", field.key, "  (default ", field.get(defaults).dump(), ")  ",
                    field.help, "\n");
  }
  return out;
}

}  // namespace elexirion::config
