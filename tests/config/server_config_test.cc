#include "server/config/server_config.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/common/logging.h"
#include "yaml-cpp/yaml.h"

namespace elexirion::config {
namespace {

using ::testing::HasSubstr;

class ServerConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("elx_config_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string WriteFile(const std::string& name, const std::string& content) {
    auto path = dir_ / name;
    std::ofstream(path) << content;
    return path.string();
  }

  // Loads with an isolated environment (never the test process's).
  absl::StatusOr<ServerConfig> Load(std::vector<std::string> args,
                                    std::vector<std::string> env = {"UNUSED=1"},
                                    std::string file = "") {
    ConfigSources sources;
    sources.args = std::move(args);
    sources.env = std::move(env);
    sources.use_process_env = false;
    sources.file_path = std::move(file);
    return LoadServerConfig(sources);
  }

  std::filesystem::path dir_;
};

TEST_F(ServerConfigTest, DefaultsAreValid) {
  auto config = Load({});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->grpc.listen, "0.0.0.0:50051");
  EXPECT_EQ(config->http.listen, "0.0.0.0:9090");
  EXPECT_EQ(config->store.driver, "sqlite");
  EXPECT_EQ(config->store.sqlite_path, "./var/elexirion.sqlite");
  EXPECT_EQ(config->grpc.max_receive_message_bytes, 16 << 20);
  EXPECT_TRUE(config->auth.tokens.empty());
}

TEST_F(ServerConfigTest, FlagsBeatEnvBeatFileBeatDefaults) {
  std::string file = WriteFile("c.yaml",
                               "grpc:\n  listen: 127.0.0.1:1000\n  max_inflight_rpcs: 7\n"
                               "http:\n  listen: 127.0.0.1:2000\n"
                               "log:\n  level: debug\n");
  auto config =
      Load({"--grpc.listen=127.0.0.1:3000"},
           {"ELEXIRION_GRPC_LISTEN=127.0.0.1:4000", "ELEXIRION_HTTP_LISTEN=127.0.0.1:5000"}, file);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->grpc.listen, "127.0.0.1:3000");      // flag
  EXPECT_EQ(config->http.listen, "127.0.0.1:5000");      // env
  EXPECT_EQ(config->grpc.max_inflight_rpcs, 7);          // file
  EXPECT_EQ(config->log.level, "debug");                 // file
  EXPECT_EQ(config->shutdown.grace, absl::Seconds(10));  // default
}

TEST_F(ServerConfigTest, ConfigFileFromFlagAndEnv) {
  std::string file = WriteFile("c.yaml", "grpc:\n  listen: 127.0.0.1:1234\n");
  auto by_flag = Load({"--config", file});
  ASSERT_TRUE(by_flag.ok()) << by_flag.status();
  EXPECT_EQ(by_flag->grpc.listen, "127.0.0.1:1234");
  auto by_env = Load({}, {"ELEXIRION_CONFIG=" + file});
  ASSERT_TRUE(by_env.ok()) << by_env.status();
  EXPECT_EQ(by_env->grpc.listen, "127.0.0.1:1234");
}

TEST_F(ServerConfigTest, ParsesSizesDurationsAndBools) {
  auto config = Load({"--grpc.max_receive_message_bytes=1MiB", "--shutdown.grace=1500ms",
                      "--grpc.enable_reflection=false", "--grpc.max_send_message_bytes=2048"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->grpc.max_receive_message_bytes, 1 << 20);
  EXPECT_EQ(config->grpc.max_send_message_bytes, 2048);
  EXPECT_EQ(config->shutdown.grace, absl::Milliseconds(1500));
  EXPECT_FALSE(config->grpc.enable_reflection);
}

TEST_F(ServerConfigTest, KeepsModuleSectionsRaw) {
  std::string file =
      WriteFile("c.yaml",
                "default_provider: simulated\nproviders:\n  simulated:\n    kind: simulated\n"
                "step_types:\n  claude: simulated\nlearning:\n  enabled: true\n");
  auto config = Load({}, {"A=1"}, file);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->llm["providers"]["simulated"]["kind"].as<std::string>(), "simulated");
  EXPECT_EQ(config->llm["default_provider"].as<std::string>(), "simulated");
  EXPECT_EQ(config->llm["step_types"]["claude"].as<std::string>(), "simulated");
  EXPECT_TRUE(config->learning["enabled"].as<bool>());
}

// Every bad value names its key and source.
struct BadCase {
  std::vector<std::string> args;
  std::string expected_key;
};

class BadFlagTest : public ServerConfigTest, public ::testing::WithParamInterface<BadCase> {};

TEST_P(BadFlagTest, NamesTheKey) {
  auto config = Load(GetParam().args);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr(GetParam().expected_key));
}

INSTANTIATE_TEST_SUITE_P(
    EveryKey, BadFlagTest,
    ::testing::Values(
        BadCase{{"--grpc.listen=nope"}, "grpc.listen"},
        BadCase{{"--grpc.listen=host:99999"}, "grpc.listen"},
        BadCase{{"--grpc.listen="}, "grpc.listen"},
        BadCase{{"--grpc.max_receive_message_bytes=-1"}, "grpc.max_receive_message_bytes"},
        BadCase{{"--grpc.max_receive_message_bytes=lots"}, "grpc.max_receive_message_bytes"},
        BadCase{{"--grpc.max_receive_message_bytes=2GiB"}, "grpc.max_receive_message_bytes"},
        BadCase{{"--grpc.max_send_message_bytes=0"}, "grpc.max_send_message_bytes"},
        BadCase{{"--grpc.max_inflight_rpcs=0"}, "grpc.max_inflight_rpcs"},
        BadCase{{"--grpc.max_inflight_rpcs=x"}, "grpc.max_inflight_rpcs"},
        BadCase{{"--grpc.max_streams=-5"}, "grpc.max_streams"},
        BadCase{{"--grpc.max_concurrent_streams_per_connection=0"},
                "grpc.max_concurrent_streams_per_connection"},
        BadCase{{"--grpc.keepalive_time=1s"}, "grpc.keepalive_time"},
        BadCase{{"--grpc.keepalive_time=soon"}, "grpc.keepalive_time"},
        BadCase{{"--grpc.keepalive_timeout=0"}, "grpc.keepalive_timeout"},
        BadCase{{"--grpc.min_client_ping_interval=100ms"}, "grpc.min_client_ping_interval"},
        BadCase{{"--grpc.max_connection_age=-3s"}, "grpc.max_connection_age"},
        BadCase{{"--grpc.max_connection_age_grace=forever"}, "grpc.max_connection_age_grace"},
        BadCase{{"--grpc.enable_reflection=maybe"}, "grpc.enable_reflection"},
        BadCase{{"--http.listen=9090"}, "http.listen"},
        BadCase{{"--http.threads=0"}, "http.threads"},
        BadCase{{"--auth.tokens_file=/nonexistent/tokens"}, "auth.tokens_file"},
        BadCase{{"--tls.cert_file=/nonexistent/cert.pem"}, "tls.cert_file"},
        BadCase{{"--tls.key_file=/nonexistent/key.pem"}, "tls.cert_file"},
        BadCase{{"--tls.require_client_cert=true"}, "tls.require_client_cert"},
        BadCase{{"--tls.require_client_cert=perhaps"}, "tls.require_client_cert"},
        BadCase{{"--store.driver=mysql"}, "store.driver"},
        BadCase{{"--store.sqlite_path="}, "store.sqlite_path"},
        BadCase{{"--store.driver=postgres"}, "store.postgres_dsn"},
        BadCase{{"--store.driver=postgres", "--store.postgres_dsn=host=db",
                 "--store.postgres_pool_size=0"},
                "store.postgres_pool_size"},
        BadCase{{"--store.postgres_pool_size=many"}, "store.postgres_pool_size"},
        BadCase{{"--store.driver=postgres", "--store.postgres_dsn=host=db",
                 "--store.postgres_ingest_writers=0"},
                "store.postgres_ingest_writers"},
        BadCase{{"--store.driver=postgres", "--store.postgres_dsn=host=db",
                 "--store.postgres_ingest_writers=65"},
                "store.postgres_ingest_writers"},
        BadCase{{"--store.busy_timeout=abc"}, "store.busy_timeout"},
        BadCase{{"--shutdown.grace=-1s"}, "shutdown.grace"},
        BadCase{{"--shutdown.drain_delay=1y"}, "shutdown.drain_delay"},
        BadCase{{"--log.level=loud"}, "log.level"}, BadCase{{"--jobs.workers=0"}, "jobs.workers"},
        BadCase{{"--jobs.lease=100ms"}, "jobs.lease"},
        BadCase{{"--jobs.heartbeat=20s"}, "jobs.heartbeat"},
        BadCase{{"--jobs.poll=0"}, "jobs.poll"},
        BadCase{{"--jobs.max_queued=0"}, "jobs.max_queued"},
        BadCase{{"--jobs.max_attempts=-2"}, "jobs.max_attempts"},
        BadCase{{"--jobs.max_provider_outage=0"}, "jobs.max_provider_outage"},
        BadCase{{"--jobs.max_provider_outage=200h"}, "jobs.max_provider_outage"},
        BadCase{{"--pipeline.max_yaml_bytes=0"}, "pipeline.max_yaml_bytes"},
        BadCase{{"--pipeline.max_steps=-1"}, "pipeline.max_steps"},
        BadCase{{"--pipeline.max_yaml_nodes=0"}, "pipeline.max_yaml_nodes"},
        BadCase{{"--pipeline.execute_threads=0"}, "pipeline.execute_threads"},
        BadCase{{"--pipeline.max_queued_executions=x"}, "pipeline.max_queued_executions"},
        BadCase{{"--pipeline.default_execute_timeout=0"}, "pipeline.default_execute_timeout"},
        BadCase{{"--no.such.key=1"}, "no.such.key"}, BadCase{{"--grpc.listen"}, "grpc.listen"},
        BadCase{{"positional"}, "positional"}));

TEST_F(ServerConfigTest, BadFileValueNamesKeyAndLine) {
  std::string file = WriteFile("c.yaml", "grpc:\n  listen: 127.0.0.1:1\n  max_streams: many\n");
  auto config = Load({}, {"A=1"}, file);
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("grpc.max_streams"));
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("line 3"));
}

TEST_F(ServerConfigTest, UnknownFileKeyAndSectionAreErrors) {
  auto unknown_key = Load({}, {"A=1"}, WriteFile("a.yaml", "grpc:\n  lisen: 1\n"));
  ASSERT_FALSE(unknown_key.ok());
  EXPECT_THAT(std::string(unknown_key.status().message()), HasSubstr("grpc.lisen"));
  auto unknown_section = Load({}, {"A=1"}, WriteFile("b.yaml", "grcp: 3\n"));
  ASSERT_FALSE(unknown_section.ok());
  EXPECT_THAT(std::string(unknown_section.status().message()), HasSubstr("grcp"));
}

TEST_F(ServerConfigTest, MalformedYamlNamesLine) {
  auto config = Load({}, {"A=1"}, WriteFile("bad.yaml", "grpc:\n  listen: [unclosed\n"));
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("line"));
}

TEST_F(ServerConfigTest, BadEnvValueNamesVariable) {
  auto config = Load({}, {"ELEXIRION_GRPC_MAX_STREAMS=lots"});
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("ELEXIRION_GRPC_MAX_STREAMS"));
}

TEST_F(ServerConfigTest, TokensFromFileAndEnvAreRedacted) {
  std::string tokens = WriteFile("tokens", "# ops\nfile-token-0123456789abcdef\n\n");
  auto config = Load({"--auth.tokens_file=" + tokens},
                     {"ELEXIRION_AUTH_TOKENS=env-token-0123456789abcdef, other-token-0123456789"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->auth.tokens,
              ::testing::ElementsAre("file-token-0123456789abcdef", "env-token-0123456789abcdef",
                                     "other-token-0123456789"));
  std::string logged = EffectiveConfigForLog(*config).dump();
  EXPECT_EQ(logged.find("file-token"), std::string::npos);
  EXPECT_EQ(logged.find("env-token"), std::string::npos);
  EXPECT_NE(logged.find("\"auth.token_count\":3"), std::string::npos) << logged;
  EXPECT_EQ(logging::Redact("x env-token-0123456789abcdef y"), "x [REDACTED] y");
}

TEST_F(ServerConfigTest, ShortTokensAndEmptyTokenFileAreRejected) {
  auto short_token = Load({}, {"ELEXIRION_AUTH_TOKENS=short"});
  ASSERT_FALSE(short_token.ok());
  EXPECT_THAT(std::string(short_token.status().message()), HasSubstr("16 characters"));
  auto empty = Load({"--auth.tokens_file=" + WriteFile("empty", "# nothing\n")});
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(std::string(empty.status().message()), HasSubstr("auth.tokens_file"));
}

TEST_F(ServerConfigTest, PostgresDsnIsRedacted) {
  auto config =
      Load({"--store.driver=postgres", "--store.postgres_dsn=postgresql://u:hunter2secret@db/elx"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(EffectiveConfigForLog(*config)["store.postgres_dsn"], "[REDACTED]");
}

TEST_F(ServerConfigTest, HelpListsEveryKey) {
  std::string help = ConfigHelp();
  EXPECT_THAT(help, HasSubstr("grpc.listen"));
  EXPECT_THAT(help, HasSubstr("shutdown.grace"));
  EXPECT_THAT(help, HasSubstr("store.sqlite_path"));
}

// The shipped Kubernetes ConfigMaps carry a server.yaml that the real loader accepts (the
// token file and the DSN come from a Secret in the cluster: stand-ins here).
TEST_F(ServerConfigTest, ShippedConfigMapsLoad) {
  const char* root = std::getenv("ELEXIRION_SOURCE_DIR");
  ASSERT_NE(root, nullptr);
  const std::string tokens = WriteFile("tokens", "tok-0123456789abcdef0123\n");
  for (const char* configmap :
       {"deploy/k8s/configmap.yaml", "deploy/k8s/multi-replica/configmap.yaml"}) {
    SCOPED_TRACE(configmap);
    YAML::Node map = YAML::LoadFile(std::string(root) + "/" + configmap);
    ASSERT_TRUE(map["data"]["server.yaml"]) << "no data.server.yaml";
    const std::string file = WriteFile("server.yaml", map["data"]["server.yaml"].as<std::string>());
    auto config = Load({"--auth.tokens_file=" + tokens},
                       {"ELEXIRION_STORE_POSTGRES_DSN=postgresql://elx@db/elx"}, file);
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(config->jobs.max_provider_outage, absl::Minutes(15));
  }
}

}  // namespace
}  // namespace elexirion::config
