// The `elexirion` CLI's habits, run as a process: --help/-h on every command (no server
// needed), unknown commands, files that are not UTF-8 (named with the byte, nothing sent, the
// server healthy), a failed `run` whose provider error is printed once, and a provider
// outage's paused/resumed lines in `jobs get` and `jobs watch`. The server is the
// real one in process (SQLite, gRPC on 127.0.0.1 port 0); the provider is the fake HTTP one.
#include "client/cli/cli.h"

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/cli/text_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/fakes/fake_provider_server.h"
#include "tests/testutil/test_server.h"
#include "yaml-cpp/yaml.h"

namespace elexirion {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using testutil::InProcessServer;
using testutil::TempDir;

// Nothing listens there: a command that tried to reach the server would fail with exit 1.
constexpr char kNoServer[] = "127.0.0.1:1";

struct Output {
  int code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs the CLI with `args`, keeping stdout and stderr apart.
Output RunCli(const std::vector<std::string>& args) {
  Output result;
  TempDir scratch;
  const std::string err_path = scratch.File("stderr");
  std::vector<std::string> argv = {"sh", "-c", "exec \"$0\" \"$@\" 2>\"$ERR\"",
                                   testutil::BinaryPath("client/elexirion")};
  argv[2] = absl::StrCat("ERR='", err_path, "'; ", argv[2]);
  argv.insert(argv.end(), args.begin(), args.end());
  result.code = testutil::RunCommand(argv, &result.out);
  result.err = testutil::ReadFile(err_path);
  return result;
}

int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

TEST(CliHelpTest, EveryCommandPrintsItsUsageOnHelpAndExitsZero) {
  const std::vector<std::string> commands = cli::CommandNames();
  ASSERT_GE(commands.size(), 20u);
  for (const std::vector<std::string>& top :
       {std::vector<std::string>{"--help"}, {"-h"}, {"help"}, {"--addr", kNoServer, "--help"}}) {
    Output r = RunCli(top);
    EXPECT_EQ(r.code, 0) << absl::StrJoin(top, " ") << "\n" << r.err;
    EXPECT_THAT(r.out, StartsWith("usage: elexirion "));
    EXPECT_EQ(r.err, "");
    for (const auto& command : commands) EXPECT_THAT(r.out, HasSubstr(command));
  }
  for (const auto& command : commands) {
    const std::vector<std::string> words = absl::StrSplit(command, ' ');
    auto with = [&](std::vector<std::string> before, std::vector<std::string> after) {
      before.insert(before.end(), words.begin(), words.end());
      before.insert(before.end(), after.begin(), after.end());
      return before;
    };
    // The flag alone, after a positional word, after an option whose value it would be,
    // after an unknown option, and `help COMMAND`.
    for (const auto& args :
         {with({"--addr", kNoServer}, {"--help"}), with({"--addr", kNoServer}, {"-h"}),
          with({"--addr", kNoServer}, {"x", "--help"}),
          with({"--addr", kNoServer}, {"--file", "-h"}),
          with({"--addr", kNoServer}, {"--bogus", "--help"}),
          with({"--addr", kNoServer, "--json", "help"}, {})}) {
      Output r = RunCli(args);
      const std::string line = absl::StrJoin(args, " ");
      EXPECT_EQ(r.code, 0) << line << "\n" << r.err;
      EXPECT_THAT(r.out, StartsWith("usage: elexirion " + command)) << line;
      EXPECT_EQ(r.err, "") << line;
    }
  }
  // A group lists its commands.
  Output jobs = RunCli({"--addr", kNoServer, "jobs", "--help"});
  EXPECT_EQ(jobs.code, 0) << jobs.err;
  for (const char* verb : {"jobs list", "jobs get", "jobs cancel", "jobs watch"}) {
    EXPECT_THAT(jobs.out, HasSubstr(verb));
  }
  EXPECT_THAT(jobs.out, Not(HasSubstr("datasets")));
}

TEST(CliHelpTest, MistakesExitTwoWithAHint) {
  Output r = RunCli({"--addr", kNoServer, "job", "list"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown command \"job list\""));
  EXPECT_THAT(r.err, HasSubstr("did you mean \"jobs list\"?"));
  r = RunCli({"--addr", kNoServer, "programs", "promot", "x", "1"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("did you mean \"programs promote\"?"));
  r = RunCli({"--addr", kNoServer, "frobnicate"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown command \"frobnicate\""));
  EXPECT_THAT(r.err, HasSubstr("elexirion --help"));
  // A group without its verb lists the verbs.
  r = RunCli({"--addr", kNoServer, "datasets"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("datasets import"));
  r = RunCli({"--bogus"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--bogus: unknown flag"));
  r = RunCli({});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, StartsWith("usage: elexirion "));
  // A usage error names the problem and where the usage is, not a gRPC status code.
  r = RunCli({"--addr", kNoServer, "optimize", "--name", "x", "--metric"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("elexirion: --metric: missing value"));
  EXPECT_THAT(r.err, HasSubstr("elexirion optimize --help"));
  EXPECT_THAT(r.err, Not(HasSubstr("INVALID_ARGUMENT")));
  r = RunCli({"--addr", kNoServer, "run", "-f"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("elexirion: -f: missing value"));
}

TEST(Utf8Test, FindsTheFirstInvalidByteWithLineAndColumn) {
  EXPECT_FALSE(cli::FindInvalidUtf8("plain ascii\n").has_value());
  EXPECT_FALSE(cli::FindInvalidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80").has_value());
  struct Case {
    std::string text;
    size_t offset;
    int line;
    int column;
  };
  for (const Case& c : std::vector<Case>{
           {"workflow:\n  name: caf\xe9\n", 21, 2, 12},  // Latin-1 é
           {"a\n\xc3\xa9\xc3\xa9\n\xff", 7, 3, 1},       // after two good characters
           {"\xc3\xa9x\xc3", 3, 1, 3},                   // truncated at the end
           {"ab\xc0\xaf", 2, 1, 3},                      // overlong '/'
           {"\xed\xa0\x80", 0, 1, 1},                    // UTF-16 surrogate
           {"\xf4\x90\x80\x80", 0, 1, 1},                // beyond U+10FFFF
           {"x\xe2\x82", 1, 1, 2},                       // truncated three-byte
           {"\x80", 0, 1, 1},                            // stray continuation
       }) {
    auto found = cli::FindInvalidUtf8(c.text);
    ASSERT_TRUE(found.has_value()) << c.offset;
    EXPECT_EQ(found->offset, c.offset);
    EXPECT_EQ(found->line, c.line) << c.offset;
    EXPECT_EQ(found->column, c.column) << c.offset;
  }
}

class CliServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto fake = fakes::FakeProviderServer::Start();
    ASSERT_TRUE(fake.ok()) << fake.status();
    fake_ = std::move(*fake);
    config::ServerConfig config = testutil::TestConfig(dir_);
    const std::string key = dir_.Write("anthropic.key", "sk-ant-CANARY-cli-0001");
    config.llm = YAML::Load(testutil::FakeAnthropicProviders(fake_->base_url(), key));
    auto server = InProcessServer::Start(config);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    client_ = server_->NewClient();
  }

  Output Cli(std::vector<std::string> args) {
    args.insert(args.begin(), {"--addr", server_->address()});
    return RunCli(args);
  }

  std::string Pipeline() {
    return testutil::SourcePath("tests/pipeline/testdata/code_analysis.yaml");
  }

  void ExpectHealthy() {
    Output r = Cli({"health"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("SERVING"));
  }

  TempDir dir_;
  std::unique_ptr<fakes::FakeProviderServer> fake_;
  std::unique_ptr<InProcessServer> server_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(CliServerTest, FilesThatAreNotUtf8AreNamedWithTheByteAndNothingIsSent) {
  const std::string latin1 = "workflow:\n  name: caf\xe9\n";
  const std::string bad_yaml = dir_.Write("latin1.yaml", latin1);
  const std::string bad_json = dir_.Write("inputs.json", "{\"code\": \"caf\xe9\"}");
  const std::string bad_jsonl =
      dir_.Write("bad.jsonl", "{\"input\": {\"a\": \"ok\"}}\n{\"input\": {\"a\": \"\xe9\"}}\n");
  const std::string bad_metric = dir_.Write("metric.yaml", "exact_match:\n  field: s\xe9v\n");
  const std::string good_metric = dir_.Write("good_metric.yaml", "exact_match:\n  field: s\n");
  const std::string trainset = dir_.File("trainset");
  fs::create_directories(trainset);
  std::ofstream(trainset + "/a.json")
      << R"({"input": {"code": "x"}, "expected_output": {"s": "1"}})";
  std::ofstream(trainset + "/b.json") << "{\"input\": {\"code\": \"\xff\"}}";
  ASSERT_EQ(Cli({"datasets", "create", "qa"}).code, 0);

  struct Case {
    std::vector<std::string> args;
    std::string names;  // the file (and flag) the error must name
    std::string where;  // the byte's position
  };
  for (const Case& c : std::vector<Case>{
           {{"run", "-f", bad_yaml}, "-f: " + bad_yaml, "offset 21 (line 2, column 12)"},
           {{"pipelines", "register", "p", "-f", bad_yaml}, bad_yaml, "offset 21"},
           {{"run", "-f", Pipeline(), "--input-json", bad_json},
            "--input-json: " + bad_json,
            "offset 13 (line 1, column 14)"},
           {{"optimize", "-f", bad_yaml, "--trainset", trainset, "--metric", good_metric},
            bad_yaml,
            "offset 21"},
           {{"optimize", "-f", Pipeline(), "--trainset", trainset, "--metric", good_metric},
            "--trainset: " + trainset + "/b.json",
            "offset 20 (line 1, column 21)"},
           {{"optimize", "-f", Pipeline(), "--trainset", bad_jsonl, "--metric", good_metric},
            bad_jsonl,
            "offset 40 (line 2, column 18)"},
           {{"optimize", "-f", Pipeline(), "--trainset", bad_jsonl, "--valset", bad_jsonl,
             "--metric", good_metric},
            "--trainset: " + bad_jsonl,
            "line 2"},
           {{"optimize", "--name", "p", "--dataset", "qa", "--metric", bad_metric},
            "--metric: " + bad_metric,
            "offset 23 (line 2, column 11)"},
           {{"datasets", "import", "qa", "--jsonl", bad_jsonl},
            "--jsonl: " + bad_jsonl,
            "offset 40"},
           {{"datasets", "import", "qa", "--dir", trainset},
            "--dir: " + trainset + "/b.json",
            "offset 20"},
           {{"run", "-f", Pipeline(), "--input", "code=caf\xe9"}, "--input", "offset 8"},
           {{"datasets", "add", "qa", "--input", "{\"a\": \"\xe9\"}", "--expected", "{}"},
            "--input",
            "offset 7"},
       }) {
    Output r = Cli(c.args);
    const std::string line = absl::StrJoin(c.args, " ");
    EXPECT_EQ(r.code, 2) << line << "\n" << r.out << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.names)) << line;
    EXPECT_THAT(r.err, HasSubstr("not UTF-8")) << line;
    EXPECT_THAT(r.err, HasSubstr(c.where)) << line;
    EXPECT_THAT(r.err, Not(HasSubstr("libprotobuf"))) << line;
  }
  EXPECT_EQ(fake_->request_count(), 0);
  Output pipelines = Cli({"pipelines", "list"});
  EXPECT_THAT(pipelines.out, HasSubstr("(no pipelines)"));
  Output examples = Cli({"datasets", "examples", "qa"});
  EXPECT_THAT(examples.out, HasSubstr("0 examples"));
  Output jobs = Cli({"jobs", "list"});
  EXPECT_THAT(jobs.out, HasSubstr("(no jobs)"));
  ExpectHealthy();
}

// Another client (not this CLI) sends a string field that is not UTF-8. gRPC's C++ server
// cannot parse such a proto3 message at all (libprotobuf refuses it before any handler runs),
// so no field can be named: today (gRPC 1.51, callback API) the call fails with UNIMPLEMENTED
// and an empty message. It must fail, store nothing and leave the server serving.
TEST_F(CliServerTest, ServerRefusesAStringThatIsNotUtf8AndKeepsServing) {
  grpc::ClientContext ctx;
  client_->Prepare(&ctx);
  v1::RegisterPipelineRequest request;
  request.mutable_pipeline()->set_name("latin1");
  request.mutable_pipeline()->set_yaml("workflow:\n  name: caf\xe9\n");
  v1::Pipeline pipeline;
  grpc::Status status = client_->pipelines().RegisterPipeline(&ctx, request, &pipeline);
  EXPECT_FALSE(status.ok()) << "registered a pipeline that is not UTF-8";
  Output pipelines = Cli({"pipelines", "list"});
  EXPECT_THAT(pipelines.out, HasSubstr("(no pipelines)"));
  ExpectHealthy();
}

TEST_F(CliServerTest, GlobalFlagsMayFollowTheCommand) {
  Output r = RunCli({"jobs", "list", "--addr", server_->address(), "--json", "--timeout=5s"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(nlohmann::json::accept(r.out)) << r.out;
  r = RunCli({"jobs", "list", "--addr"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--addr: missing value"));
}

TEST_F(CliServerTest, FailedRunPrintsTheProviderErrorOnce) {
  constexpr char kMarker[] = "prompt is too long: 210000 tokens > 200000 maximum";
  fake_->SetHandler([&](const fakes::RecordedRequest& request) {
    return fakes::FakeResponse::Status(
        400, fakes::ErrorBody(request.api(), 400, "invalid_request_error", kMarker));
  });
  Output r =
      Cli({"run", "-f", Pipeline(), "--input", "code=x = 1", "--input", "analysis_type=bugs"});
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_EQ(Count(r.out + r.err, kMarker), 1) << "stdout:\n" << r.out << "stderr:\n" << r.err;
  EXPECT_THAT(r.err, HasSubstr(kMarker));
  EXPECT_THAT(r.err, HasSubstr("analyze_code"));
  EXPECT_THAT(r.out, HasSubstr("== step analyze_code (claude_smart, failed"));
  EXPECT_THAT(r.out, HasSubstr("== failed"));
  EXPECT_THAT(r.err + r.out, Not(HasSubstr("CANARY")));
  EXPECT_GE(fake_->request_count(), 1);
  // --json: stdout is the response (its structured error fields), stderr the error once.
  r = Cli({"--json", "run", "-f", Pipeline(), "--input", "code=x = 1", "--input",
           "analysis_type=bugs"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(Count(r.err, kMarker), 1) << r.err;
  EXPECT_TRUE(nlohmann::json::accept(r.out)) << r.out;
}

// `optimize --follow` of a job that fails: the state lines on stdout, the error once on stderr.
TEST_F(CliServerTest, FailedJobFollowedPrintsItsErrorOnce) {
  constexpr char kMarker[] = "model retired: use a newer one";
  fake_->SetHandler([&](const fakes::RecordedRequest& request) {
    return fakes::FakeResponse::Status(
        400, fakes::ErrorBody(request.api(), 400, "invalid_request_error", kMarker));
  });
  Output r = Cli({"optimize", "-f", testutil::CodeAnalysisExample("pipeline.yaml"), "--trainset",
                  testutil::CodeAnalysisExample("examples"), "--metric",
                  testutil::CodeAnalysisExample("metric.yaml"), "--follow"});
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(": failed\n"));
  EXPECT_THAT(r.out, Not(HasSubstr("failed (failed)")));
  EXPECT_EQ(Count(r.out + r.err, kMarker), 1) << "stdout:\n" << r.out << "stderr:\n" << r.err;
  EXPECT_THAT(r.err, HasSubstr(kMarker));
  // Not a terminal: no progress line redrawn with escape codes.
  EXPECT_THAT(r.err, Not(HasSubstr("\033[K")));
}

fakes::FakeResponse SeverityMedium(const fakes::RecordedRequest&) {
  return fakes::FakeResponse::Text(
      "[[ ## findings ## ]]\nno issues\n\n[[ ## recommendations ## ]]\nnone\n\n"
      "[[ ## severity ## ]]\nmedium\n\n[[ ## completed ## ]]\n");
}

// A provider outage as the CLI shows it: `jobs get` prints the pause, `jobs watch` prints a
// paused line and a resumed line, and the job still succeeds. The fake provider is stopped
// mid-job and started again on the same port; the instance cools down after 2 failed
// attempts for 1 s.
TEST(CliOutageTest, PausedAndResumedLinesInJobsGetAndWatch) {
  TempDir dir;
  fakes::FakeProviderServer::Options fake_options;
  fake_options.latency = absl::Milliseconds(200);
  auto fake = fakes::FakeProviderServer::Start(fake_options);
  ASSERT_TRUE(fake.ok()) << fake.status();
  (*fake)->SetHandler(SeverityMedium);
  const int port = (*fake)->port();
  config::ServerConfig config = testutil::TestConfig(dir);
  config.jobs.workers = 1;
  config.jobs.poll = absl::Milliseconds(50);
  config.jobs.heartbeat = absl::Milliseconds(100);
  const std::string key = dir.Write("anthropic.key", "sk-ant-CANARY-cli-outage-0001");
  config.llm = YAML::Load(
      absl::StrCat(testutil::FakeAnthropicProviders((*fake)->base_url(), key),
                   "    max_retries: 1\n    connect_timeout: 1s\n    cooldown_after_failures: 2\n"
                   "    cooldown: 1s\n"));
  auto server = InProcessServer::Start(config);
  ASSERT_TRUE(server.ok()) << server.status();
  auto cli = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"--addr", (*server)->address()});
    return RunCli(args);
  };

  Output submitted =
      cli({"optimize", "-f", testutil::CodeAnalysisExample("pipeline.yaml"), "--trainset",
           testutil::CodeAnalysisExample("examples"), "--metric",
           testutil::CodeAnalysisExample("metric.yaml"), "--optimizer", "bootstrap_random_search",
           "--param", "num_candidate_programs=2", "--param", "max_bootstrapped_demos=3", "--json"});
  ASSERT_EQ(submitted.code, 0) << submitted.err;
  const std::string job_id = nlohmann::json::parse(submitted.out).value("id", "");
  ASSERT_FALSE(job_id.empty()) << submitted.out;

  Output watched;
  std::thread watcher([&] { watched = cli({"jobs", "watch", job_id}); });
  auto client = (*server)->NewClient();
  auto wait_for = [&](const std::function<bool(const v1::Job&)>& done) {
    for (int i = 0; i < 600; ++i) {
      v1::Job job = testutil::GetJob(*client, job_id);
      if (done(job)) return job;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return testutil::GetJob(*client, job_id);
  };
  // Some work done, then the provider goes away.
  v1::Job running =
      wait_for([](const v1::Job& j) { return j.progress().usage().llm_calls() >= 2; });
  ASSERT_EQ(running.state(), v1::JOB_STATE_RUNNING) << running.DebugString();
  (*fake)->Stop();
  v1::Job paused = wait_for([](const v1::Job& j) { return j.progress().has_provider_wait(); });
  ASSERT_TRUE(paused.progress().has_provider_wait()) << paused.DebugString();

  Output got = cli({"jobs", "get", job_id});
  EXPECT_EQ(got.code, 0) << got.err;
  EXPECT_THAT(got.out, HasSubstr("paused:     waiting for the provider since"));
  EXPECT_THAT(got.out, Not(HasSubstr("CANARY")));

  fakes::FakeProviderServer::Options again = fake_options;
  again.port = port;
  auto restarted = fakes::FakeProviderServer::Start(again);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  (*restarted)->SetHandler(SeverityMedium);
  watcher.join();
  EXPECT_EQ(watched.code, 0) << watched.out << watched.err;
  EXPECT_THAT(watched.out,
              HasSubstr(absl::StrCat("job ", job_id, ": paused, provider unavailable")));
  EXPECT_THAT(watched.out, HasSubstr(absl::StrCat("job ", job_id, ": resumed after ")));
  EXPECT_THAT(watched.out, HasSubstr(": succeeded"));
  // One line per provider_wait event (each probe that fails reports its reason), not a
  // progress-line redraw per second.
  EXPECT_LE(Count(watched.out, "paused, provider unavailable"), 5) << watched.out;

  Output after = cli({"jobs", "get", job_id});
  EXPECT_THAT(after.out, Not(HasSubstr("paused:")));
}

}  // namespace
}  // namespace elexirion
