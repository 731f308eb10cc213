// elexirion-server as a separate process: start-up failures, SIGTERM drain, the HTTP
// endpoint scraped live and checked with promtool, and the CLI.
#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testutil/test_server.h"

namespace elexirion {
namespace {

using ::testing::HasSubstr;
using testutil::ServerProcess;
using testutil::TempDir;

std::vector<std::string> BaseArgs(const TempDir& dir) {
  return {"--grpc.listen=127.0.0.1:0", "--http.listen=127.0.0.1:0",
          "--store.sqlite_path=" + dir.File("db.sqlite"), "--shutdown.grace=3s"};
}

std::string Cli() { return testutil::BinaryPath("client/elexirion"); }

TEST(ServerProcessTest, BadConfigExitsNonZeroNamingTheKey) {
  TempDir dir;
  auto args = BaseArgs(dir);
  args.push_back("--grpc.max_receive_message_bytes=huge");
  auto process = ServerProcess::Start(args);
  ASSERT_FALSE(process.ok());
  EXPECT_THAT(std::string(process.status().message()), HasSubstr("status 2"));
  EXPECT_THAT(std::string(process.status().message()),
              HasSubstr("grpc.max_receive_message_bytes"));
}

TEST(ServerProcessTest, BadLearningConfigExitsTwoNamingTheKeyPath) {
  TempDir dir;
  auto args = BaseArgs(dir);
  args.push_back("--config");
  args.push_back(dir.Write("bad.yaml",
                           "learning:\n  pipelines:\n    code_analysis:\n"
                           "      metric: {exact_match: {field: severity}}\n"
                           "      daily: {at: \"25:00\"}\n"));
  auto process = ServerProcess::Start(args);
  ASSERT_FALSE(process.ok());
  EXPECT_THAT(std::string(process.status().message()), HasSubstr("status 2"));
  EXPECT_THAT(std::string(process.status().message()),
              HasSubstr("learning.pipelines.code_analysis.daily.at"));
}

TEST(ServerProcessTest, PortInUseExitsNonZero) {
  TempDir dir;
  auto first = ServerProcess::Start(BaseArgs(dir));
  ASSERT_TRUE(first.ok()) << first.status();
  auto args = BaseArgs(dir);
  args[0] = absl::StrCat("--grpc.listen=127.0.0.1:", (*first)->grpc_port());
  args[2] = "--store.sqlite_path=" + dir.File("other.sqlite");
  auto second = ServerProcess::Start(args);
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("status 1"));
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("cannot bind"));
}

TEST(ServerProcessTest, SigtermDrainsAndExitsZero) {
  TempDir dir;
  auto args = BaseArgs(dir);
  args.push_back("--shutdown.drain_delay=1500ms");
  auto process = ServerProcess::Start(args);
  ASSERT_TRUE(process.ok()) << process.status();
  std::string out;
  ASSERT_EQ(testutil::RunCommand({Cli(), "--addr", (*process)->address(), "health"}, &out), 0)
      << out;
  // During the drain delay the process still answers health, now NOT_SERVING, and readiness
  // fails, while liveness still passes.
  client::Client::Options options;
  options.address = (*process)->address();
  options.deadline = absl::Seconds(1);
  auto client = *client::Client::Create(options);
  ASSERT_TRUE(client->CheckHealth().ok());
  ::kill((*process)->pid(), SIGTERM);
  bool saw_not_serving = false;
  for (int i = 0; i < 100 && !saw_not_serving; ++i) {
    absl::Status health = client->CheckHealth();
    saw_not_serving = absl::StrContains(health.message(), "NOT_SERVING");
    if (!saw_not_serving) absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_TRUE(saw_not_serving);
  auto readyz = testutil::HttpGet((*process)->http_port(), "/readyz");
  ASSERT_TRUE(readyz.ok());
  EXPECT_EQ(readyz->first, 503);
  int status = (*process)->Signal(SIGTERM);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  std::string log = (*process)->Stderr();
  EXPECT_THAT(log, HasSubstr("\"msg\":\"signal received\""));
  EXPECT_THAT(log, HasSubstr("\"msg\":\"stopped\""));
}

TEST(ServerProcessTest, LogsAreJsonLinesWithRedactedConfig) {
  TempDir dir;
  std::string tokens = dir.Write("tokens", "secret-token-abcdef0123456789\n");
  auto args = BaseArgs(dir);
  args.push_back("--auth.tokens_file=" + tokens);
  auto process = ServerProcess::Start(args);
  ASSERT_TRUE(process.ok()) << process.status();
  (*process)->Signal(SIGTERM);
  std::string log = (*process)->Stderr();
  EXPECT_THAT(log, HasSubstr("\"msg\":\"effective configuration\""));
  EXPECT_THAT(log, HasSubstr("\"auth.token_count\":1"));
  EXPECT_EQ(log.find("secret-token-abcdef0123456789"), std::string::npos);
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    EXPECT_TRUE(nlohmann::json::accept(line)) << line;
  }
}

TEST(ServerProcessTest, HttpEndpointsAndPromtool) {
  TempDir dir;
  auto process = ServerProcess::Start(BaseArgs(dir));
  ASSERT_TRUE(process.ok()) << process.status();
  const int port = (*process)->http_port();
  // Generate some RPC traffic so per-method series exist.
  std::string out;
  ASSERT_EQ(testutil::RunCommand({Cli(), "--addr", (*process)->address(), "jobs", "list"}, &out),
            0)
      << out;

  auto healthz = testutil::HttpGet(port, "/healthz");
  ASSERT_TRUE(healthz.ok()) << healthz.status();
  EXPECT_EQ(healthz->first, 200);
  auto readyz = testutil::HttpGet(port, "/readyz");
  ASSERT_TRUE(readyz.ok());
  EXPECT_EQ(readyz->first, 200);
  auto post = testutil::HttpGet(port, "/metrics", "POST");
  ASSERT_TRUE(post.ok());
  EXPECT_EQ(post->first, 405);
  auto missing = testutil::HttpGet(port, "/nope");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->first, 404);

  auto metrics = testutil::HttpGet(port, "/metrics");
  ASSERT_TRUE(metrics.ok());
  ASSERT_EQ(metrics->first, 200);
  const std::string& text = metrics->second;
  EXPECT_THAT(text, HasSubstr("elexirion_rpc_requests_total{code=\"OK\",method=\"/elexirion.v1."
                              "OptimizerService/ListJobs\"} 1"));
  EXPECT_THAT(text, HasSubstr("elexirion_rpc_latency_seconds_bucket"));
  EXPECT_THAT(text, HasSubstr("elexirion_build_info{version=\"0.1.0\"} 1"));
  EXPECT_THAT(text, HasSubstr("elexirion_process_start_time_seconds"));

  TempDir scratch;
  std::string path = scratch.Write("metrics.txt", text);
  std::string promtool_out;
  int rc = testutil::RunCommand({"sh", "-c", "promtool check metrics < " + path}, &promtool_out);
  EXPECT_EQ(rc, 0) << promtool_out;
  (*process)->Signal(SIGTERM);
}

TEST(ServerProcessTest, CliHealthAndJobs) {
  TempDir dir;
  auto process = ServerProcess::Start(BaseArgs(dir));
  ASSERT_TRUE(process.ok()) << process.status();
  const std::string addr = (*process)->address();
  std::string out;
  EXPECT_EQ(testutil::RunCommand({Cli(), "--addr", addr, "health"}, &out), 0);
  EXPECT_THAT(out, HasSubstr("SERVING"));
  out.clear();
  EXPECT_EQ(testutil::RunCommand({Cli(), "--addr", addr, "--json", "jobs", "list"}, &out), 0);
  EXPECT_TRUE(nlohmann::json::accept(out)) << out;
  out.clear();
  EXPECT_EQ(testutil::RunCommand({Cli(), "--addr", addr, "jobs", "get", "nope"}, &out), 1);
  EXPECT_THAT(out, HasSubstr("NOT_FOUND"));
  out.clear();
  EXPECT_EQ(testutil::RunCommand({Cli(), "--addr", addr, "jobs", "list", "--state", "bogus"},
                                 &out),
            2);
  EXPECT_THAT(out, HasSubstr("--state"));
  out.clear();
  EXPECT_EQ(testutil::RunCommand({Cli(), "--addr", addr, "frobnicate"}, &out), 2);
  EXPECT_THAT(out, HasSubstr("unknown command"));
  (*process)->Signal(SIGTERM);
  out.clear();
  EXPECT_EQ(testutil::RunCommand({Cli(), "--addr", addr, "--timeout", "2s", "health"}, &out), 1);
  EXPECT_THAT(out, HasSubstr("UNAVAILABLE"));
}

TEST(ServerProcessTest, CliRunsPipelinesOnTheSimulatedModelWithoutKeys) {
  TempDir dir;
  auto args = BaseArgs(dir);
  args.push_back("--pipeline.prompts_dir=" + testutil::SourcePath("tests/pipeline/testdata/prompts"));
  auto process = ServerProcess::Start(args);
  ASSERT_TRUE(process.ok()) << process.status();
  EXPECT_THAT((*process)->Stderr(), HasSubstr("simulated model"));
  const std::string addr = (*process)->address();
  const std::string pipeline = testutil::SourcePath("tests/pipeline/testdata/code_analysis.yaml");
  std::string inputs = dir.Write("inputs.json", R"({"analysis_type": "bugs"})");
  std::string out;
  int rc = testutil::RunCommand({Cli(), "--addr", addr, "run", "-f", pipeline, "--input",
                                 "code=print(1/0)", "--input-json", inputs, "--prompts"},
                                &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("== step analyze_code (claude_smart, succeeded, simulated"));
  EXPECT_THAT(out, HasSubstr("print(1/0)"));
  EXPECT_THAT(out, HasSubstr("== succeeded: 1 calls"));

  out.clear();
  rc = testutil::RunCommand({Cli(), "--addr", addr, "--json", "run", "-f", pipeline, "--input",
                             "code=x", "--input", "analysis_type=style"},
                            &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_TRUE(nlohmann::json::accept(out)) << out;

  out.clear();
  EXPECT_EQ(testutil::RunCommand({Cli(), "--addr", addr, "pipelines", "register", "ca", "-f",
                                  pipeline},
                                 &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("registered ca revision 1"));
  out.clear();
  EXPECT_EQ(testutil::RunCommand({Cli(), "--addr", addr, "run", "--name", "ca", "--input",
                                  "code=y", "--input", "analysis_type=bugs"},
                                 &out),
            0)
      << out;

  // Usage errors exit 2, server-side rejections 1.
  out.clear();
  EXPECT_EQ(testutil::RunCommand({Cli(), "--addr", addr, "run", "--input", "novalue"}, &out), 2);
  out.clear();
  std::string bad = dir.Write("bad.yaml", "workflow: {name: x, steps: []}\n");
  EXPECT_EQ(testutil::RunCommand({Cli(), "--addr", addr, "run", "-f", bad}, &out), 1);
  EXPECT_THAT(out, HasSubstr("INVALID_ARGUMENT"));
  (*process)->Signal(SIGTERM);
}

}  // namespace
}  // namespace elexirion
