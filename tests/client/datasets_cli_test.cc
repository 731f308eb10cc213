// `elexirion datasets ...` and `elexirion usage` as a process against the real server (in
// process, real SQLite, gRPC on 127.0.0.1 port 0): the design layout round trip, duplicates on
// re-import, paged ExportExamples over 2,500 examples, and the bad inputs of the issue.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testutil/test_server.h"

namespace elexirion {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using testutil::InProcessServer;
using testutil::TempDir;

std::string Cli() { return testutil::BinaryPath("client/elexirion"); }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

google::protobuf::Struct Struct(const std::string& json) {
  google::protobuf::Struct out;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &out).ok()) << json;
  return out;
}

// A file as the design document's TrainingDataManager writes it (json.dump, indent 2).
nlohmann::ordered_json DesignExample(const std::string& id, int n) {
  nlohmann::ordered_json json;
  json["id"] = id;
  json["input"] = {{"code", absl::StrCat("def f", n, "(): return eval(x)")}, {"language", "py"}};
  json["expected_output"] = {{"severity", "high"}, {"findings", {"eval of input", n}}};
  json["metadata"] = {{"source", "manual"}, {"quality_score", 9.5}};
  json["created_at"] = "2024-05-01T10:00:00.123456";
  return json;
}

class DatasetsCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = InProcessServer::Start(testutil::TestConfig(dir_));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    client_ = server_->NewClient();
  }

  // Runs the CLI against the server; stdout and stderr in `output`.
  int Run(std::vector<std::string> args, std::string* output) {
    args.insert(args.begin(), {Cli(), "--addr", server_->address()});
    output->clear();  // RunCommand appends
    return testutil::RunCommand(args, output);
  }

  void CreateDataset(const std::string& name) {
    std::string out;
    ASSERT_EQ(Run({"datasets", "create", name, "--pipeline", "code_analysis"}, &out), 0) << out;
  }

  // Writes n design-layout files into `dir` and returns them by id.
  std::map<std::string, nlohmann::json> WriteDesignDir(const std::string& dir, int n) {
    fs::create_directories(dir);
    std::map<std::string, nlohmann::json> written;
    for (int i = 0; i < n; ++i) {
      const std::string id = absl::StrCat("c0ffee", i < 10 ? "0" : "", i);
      auto json = DesignExample(id, i);
      std::ofstream(dir + "/" + id + ".json") << json.dump(2);
      written[id] = nlohmann::json::parse(json.dump());
    }
    return written;
  }

  std::vector<v1::Example> ListAll(const std::string& dataset) {
    std::vector<v1::Example> out;
    std::string token;
    do {
      grpc::ClientContext ctx;
      client_->Prepare(&ctx);
      v1::ListExamplesRequest request;
      request.set_dataset(dataset);
      request.set_page_size(1000);
      request.set_page_token(token);
      v1::ListExamplesResponse response;
      grpc::Status status = client_->datasets().ListExamples(&ctx, request, &response);
      EXPECT_TRUE(status.ok()) << status.error_message();
      if (!status.ok()) break;
      out.insert(out.end(), response.examples().begin(), response.examples().end());
      token = response.next_page_token();
    } while (!token.empty());
    return out;
  }

  grpc::Status Export(const std::string& dataset, int page_size, const std::string& token,
                      v1::ExportExamplesResponse* response) {
    grpc::ClientContext ctx;
    client_->Prepare(&ctx);
    v1::ExportExamplesRequest request;
    request.set_dataset(dataset);
    request.set_page_size(page_size);
    request.set_page_token(token);
    return client_->datasets().ExportExamples(&ctx, request, response);
  }

  void ExpectHealthy() {
    std::string out;
    EXPECT_EQ(Run({"health"}, &out), 0) << out;
    EXPECT_THAT(out, HasSubstr("SERVING"));
  }

  TempDir dir_;
  std::unique_ptr<InProcessServer> server_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(DatasetsCliTest, DesignLayoutRoundTripKeepsExamplesAndReimportAddsNone) {
  const std::string src = dir_.File("src");
  const auto originals = WriteDesignDir(src, 12);
  CreateDataset("code_review");
  std::string out;
  ASSERT_EQ(Run({"datasets", "import", "code_review", "--dir", src}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("12 added, 0 duplicates, 0 errors"));

  const std::string exported = dir_.File("exported/nested");
  ASSERT_EQ(Run({"datasets", "export", "code_review", "--dir", exported}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("exported 12 examples"));
  int files = 0;
  for (const auto& entry : fs::directory_iterator(exported)) {
    ++files;
    const std::string text = ReadFile(entry.path().string());
    // Indent 2 and the design's field order.
    EXPECT_EQ(text.rfind("{\n  \"id\": ", 0), 0u) << text;
    auto json = nlohmann::ordered_json::parse(text);
    std::vector<std::string> keys;
    for (const auto& [key, value] : json.items()) keys.push_back(key);
    EXPECT_THAT(keys,
                ::testing::ElementsAre("id", "input", "expected_output", "metadata", "created_at"));
    const std::string id = json["id"];
    EXPECT_EQ(entry.path().filename().string(), id + ".json");
    ASSERT_TRUE(originals.count(id)) << id;
    const nlohmann::json& original = originals.at(id);
    const nlohmann::json copy = nlohmann::json::parse(text);
    EXPECT_EQ(copy["input"], original["input"]);
    EXPECT_EQ(copy["expected_output"], original["expected_output"]);
    EXPECT_EQ(copy["metadata"], original["metadata"]);
    EXPECT_TRUE(std::regex_match(copy["created_at"].get<std::string>(),
                                 std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z)")))
        << copy["created_at"];
  }
  EXPECT_EQ(files, 12);

  // The same directory again, and the exported one: every example is a duplicate.
  ASSERT_EQ(Run({"datasets", "import", "code_review", "--dir", src}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("0 added, 12 duplicates, 0 errors"));
  ASSERT_EQ(Run({"datasets", "import", "code_review", "--dir", exported}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("0 added, 12 duplicates, 0 errors"));
  EXPECT_EQ(ListAll("code_review").size(), 12u);

  // The exported directory imports into another dataset with the same ids and content.
  CreateDataset("copy");
  ASSERT_EQ(Run({"datasets", "import", "copy", "--dir", exported}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("12 added"));
  for (const auto& example : ListAll("copy")) {
    ASSERT_TRUE(originals.count(example.id())) << example.id();
    std::string input;
    ASSERT_TRUE(google::protobuf::util::MessageToJsonString(example.input(), &input).ok());
    EXPECT_EQ(nlohmann::json::parse(input), originals.at(example.id())["input"]);
  }

  // Exporting over the same files changes nothing; a different file is kept unless --force.
  ASSERT_EQ(Run({"datasets", "export", "code_review", "--dir", exported}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("0 written, 12 unchanged"));
  const std::string victim = exported + "/c0ffee03.json";
  std::ofstream(victim) << R"({"id": "c0ffee03", "input": {"code": "edited"}})";
  EXPECT_EQ(Run({"datasets", "export", "code_review", "--dir", exported}, &out), 2) << out;
  EXPECT_THAT(out, HasSubstr("c0ffee03.json"));
  EXPECT_THAT(out, HasSubstr("--force"));
  EXPECT_THAT(ReadFile(victim), HasSubstr("edited"));
  ASSERT_EQ(Run({"datasets", "export", "code_review", "--dir", exported, "--force"}, &out), 0)
      << out;
  EXPECT_THAT(ReadFile(victim), Not(HasSubstr("edited")));
}

TEST_F(DatasetsCliTest, AddListDeleteAndJsonlRoundTrip) {
  CreateDataset("qa");
  std::string out;
  ASSERT_EQ(Run({"datasets", "add", "qa", "--input", R"({"question": "2+2"})", "--expected",
                 R"({"answer": "4"})", "--metadata", R"({"source": "manual"})"},
                &out),
            0)
      << out;
  ASSERT_THAT(out, HasSubstr("added example "));
  const std::string id = out.substr(out.find("added example ") + 14, 8);
  ASSERT_EQ(Run({"datasets", "add", "qa", "--input", R"({"question": "2+2"})", "--expected",
                 R"({"answer": "4"})"},
                &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("not added"));
  ASSERT_EQ(Run({"datasets", "add", "qa", "--input", R"({"question": "3+3"})", "--expected",
                 R"({"answer": "6"})"},
                &out),
            0)
      << out;

  ASSERT_EQ(Run({"datasets", "list"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("qa"));
  EXPECT_THAT(out, HasSubstr("code_analysis"));
  ASSERT_EQ(Run({"datasets", "examples", "qa"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr(id));
  EXPECT_THAT(out, HasSubstr("2 examples"));

  const std::string jsonl = dir_.File("qa.jsonl");
  ASSERT_EQ(Run({"datasets", "export", "qa", "--jsonl", jsonl}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("exported 2 examples"));
  EXPECT_EQ(Run({"datasets", "export", "qa", "--jsonl", jsonl}, &out), 2) << out;
  EXPECT_THAT(out, HasSubstr("--force"));
  ASSERT_EQ(Run({"datasets", "export", "qa", "--jsonl", "-"}, &out), 0) << out;
  EXPECT_EQ(out, ReadFile(jsonl));
  CreateDataset("qa2");
  ASSERT_EQ(Run({"datasets", "import", "qa2", "--jsonl", jsonl}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("2 added, 0 duplicates"));
  auto copied = ListAll("qa2");
  ASSERT_EQ(copied.size(), 2u);
  EXPECT_EQ(copied[0].id(), id);
  EXPECT_EQ(copied[0].metadata().fields().at("source").string_value(), "manual");

  ASSERT_EQ(Run({"datasets", "delete-example", "qa", id}, &out), 0) << out;
  ASSERT_EQ(Run({"datasets", "examples", "qa"}, &out), 0) << out;
  EXPECT_THAT(out, Not(HasSubstr(id)));
  EXPECT_THAT(out, HasSubstr("1 examples"));
  ASSERT_EQ(Run({"datasets", "delete", "qa2"}, &out), 0) << out;
  ASSERT_EQ(Run({"datasets", "list"}, &out), 0) << out;
  EXPECT_THAT(out, Not(HasSubstr("qa2")));
}

TEST_F(DatasetsCliTest, PagedExportReturnsAllExamplesInOrder) {
  CreateDataset("big");
  std::vector<std::string> ids;
  for (int batch = 0; batch < 5; ++batch) {
    grpc::ClientContext ctx;
    client_->Prepare(&ctx);
    v1::AddExamplesRequest request;
    request.set_dataset("big");
    for (int i = 0; i < 500; ++i) {
      v1::Example* e = request.add_examples();
      const int n = batch * 500 + i;
      *e->mutable_input() = Struct(absl::StrCat(R"({"code": "line )", n, R"("})"));
      *e->mutable_expected_output() = Struct(absl::StrCat(R"({"n": )", n, "}"));
    }
    v1::AddExamplesResponse response;
    ASSERT_TRUE(client_->datasets().AddExamples(&ctx, request, &response).ok());
    ids.insert(ids.end(), response.ids().begin(), response.ids().end());
  }
  ASSERT_EQ(ids.size(), 2500u);

  // Default page size (1000), then 300: every example once, in insertion order.
  for (int page_size : {0, 300}) {
    std::vector<std::string> seen;
    std::vector<int> page_lengths;
    std::string token;
    do {
      v1::ExportExamplesResponse page;
      grpc::Status status = Export("big", page_size, token, &page);
      ASSERT_TRUE(status.ok()) << status.error_message();
      int lines = 0;
      for (absl::string_view line : absl::StrSplit(page.jsonl(), '\n', absl::SkipEmpty())) {
        v1::Example example;
        ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(std::string(line), &example).ok());
        EXPECT_EQ(example.expected_output().fields().at("n").number_value(),
                  static_cast<double>(seen.size()));
        seen.push_back(example.id());
        ++lines;
      }
      page_lengths.push_back(lines);
      token = page.next_page_token();
    } while (!token.empty());
    EXPECT_EQ(seen, ids) << "page_size " << page_size;
    if (page_size == 0) {
      EXPECT_THAT(page_lengths, ::testing::ElementsAre(1000, 1000, 500));
    } else {
      EXPECT_EQ(page_lengths.size(), 9u);
    }
  }

  // A client from before paging (no page_size, token ignored) gets the first 1000.
  v1::ExportExamplesResponse first;
  ASSERT_TRUE(Export("big", 0, "", &first).ok());
  EXPECT_EQ(std::count(first.jsonl().begin(), first.jsonl().end(), '\n'), 1000);
  EXPECT_FALSE(first.next_page_token().empty());

  // The CLI pages through all of them, to JSON Lines and to the design layout.
  std::string out;
  const std::string jsonl = dir_.File("big.jsonl");
  ASSERT_EQ(Run({"datasets", "export", "big", "--jsonl", jsonl}, &out), 0) << out;
  std::vector<std::string> lines = absl::StrSplit(ReadFile(jsonl), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2500u);
  for (size_t i = 0; i < lines.size(); ++i) {
    ASSERT_EQ(nlohmann::json::parse(lines[i])["id"], ids[i]) << i;
  }
  const std::string dir = dir_.File("big");
  ASSERT_EQ(Run({"datasets", "export", "big", "--dir", dir}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("2500 written"));
  ASSERT_EQ(Run({"datasets", "import", "big", "--dir", dir}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("0 added, 2500 duplicates, 0 errors"));
  ASSERT_EQ(Run({"datasets", "examples", "big"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("2500 examples"));

  // Bad page_size and page_token name the field and leave the server serving.
  for (int bad : {-1, 1001}) {
    v1::ExportExamplesResponse page;
    grpc::Status status = Export("big", bad, "", &page);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr("page_size"));
  }
  for (const std::string& bad : {std::string("garbage!"), std::string("Zm9vYmFy")}) {
    v1::ExportExamplesResponse page;
    grpc::Status status = Export("big", 0, bad, &page);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr("page_token"));
  }
  // A token is bound to its dataset.
  CreateDataset("other");
  v1::ExportExamplesResponse page;
  grpc::Status status = Export("other", 0, first.next_page_token(), &page);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("page_token"));
  ExpectHealthy();
}

TEST_F(DatasetsCliTest, BadInputsExitTwoOrReturnTheServerError) {
  CreateDataset("qa");
  std::string out;
  // Missing file and directory.
  EXPECT_EQ(Run({"datasets", "import", "qa", "--jsonl", dir_.File("missing.jsonl")}, &out), 2);
  EXPECT_THAT(out, HasSubstr("missing.jsonl"));
  EXPECT_EQ(Run({"datasets", "import", "qa", "--dir", dir_.File("missing")}, &out), 2);
  EXPECT_THAT(out, HasSubstr("missing"));

  // A malformed file among good ones is named, and nothing is imported.
  const std::string src = dir_.File("src");
  WriteDesignDir(src, 3);
  std::ofstream(src + "/broken01.json") << R"({"id": "broken01", "input": {"code": )";
  EXPECT_EQ(Run({"datasets", "import", "qa", "--dir", src}, &out), 2) << out;
  EXPECT_THAT(out, HasSubstr("broken01.json"));
  EXPECT_THAT(out, HasSubstr("not valid JSON"));
  EXPECT_TRUE(ListAll("qa").empty());
  fs::remove(src + "/broken01.json");
  std::ofstream(src + "/noinput1.json") << R"({"id": "noinput1", "expected_output": {}})";
  EXPECT_EQ(Run({"datasets", "import", "qa", "--dir", src}, &out), 2) << out;
  EXPECT_THAT(out, HasSubstr("noinput1.json: input: required"));
  std::ofstream(dir_.File("bad.jsonl")) << R"({"input": {"a": 1}})"
                                        << "\n[1, 2]\n";
  EXPECT_EQ(Run({"datasets", "import", "qa", "--jsonl", dir_.File("bad.jsonl")}, &out), 2);
  EXPECT_THAT(out, HasSubstr("bad.jsonl:2: must be a JSON object"));

  // Unknown dataset: the server's NOT_FOUND, exit 1, and no export directory left behind.
  fs::remove(src + "/noinput1.json");
  EXPECT_EQ(Run({"datasets", "import", "nope", "--dir", src}, &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("NOT_FOUND"));
  EXPECT_EQ(Run({"datasets", "export", "nope", "--dir", dir_.File("never")}, &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("NOT_FOUND"));
  EXPECT_FALSE(fs::exists(dir_.File("never")));
  EXPECT_EQ(Run({"datasets", "examples", "nope"}, &out), 1) << out;
  EXPECT_EQ(Run({"datasets", "delete", "nope"}, &out), 1) << out;

  // Command-line mistakes.
  const std::vector<std::vector<std::string>> usage_errors = {
      {"datasets", "import", "qa"},
      {"datasets", "import", "qa", "--jsonl", "a", "--dir", "b"},
      {"datasets", "export", "qa"},
      {"datasets", "create"},
      {"datasets", "add", "qa", "--input", "not json", "--expected", "{}"},
      {"datasets", "add", "qa", "--input", R"({"a": 1})"},
      {"datasets", "delete-example", "qa"},
      {"datasets", "list", "--bogus", "1"},
      {"datasets", "frobnicate"},
      {"usage"},
      {"usage", "code_analysis", "--window", "soon"},
  };
  for (const auto& args : usage_errors) {
    EXPECT_EQ(Run(args, &out), 2) << absl::StrJoin(args, " ") << "\n" << out;
    EXPECT_THAT(out, HasSubstr("elexirion: ")) << absl::StrJoin(args, " ");
  }
  EXPECT_EQ(Run({"datasets", "create", "Bad Name"}, &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("dataset.name"));
  ExpectHealthy();
}

TEST_F(DatasetsCliTest, UsagePrintsTheStatistics) {
  std::string out;
  ASSERT_EQ(Run({"usage", "code_analysis"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("executions:         0"));
  EXPECT_THAT(out, HasSubstr("last optimization:  never"));

  grpc::ClientContext ctx;
  client_->Prepare(&ctx);
  v1::RecordExecutionsRequest request;
  for (int i = 0; i < 4; ++i) {
    v1::ExecutionRecord* r = request.add_records();
    r->set_pipeline_name("code_analysis");
    r->set_success(i != 3);
    r->mutable_duration()->set_seconds(1);
    r->set_quality_score(8.0);
    *r->mutable_input() = Struct(absl::StrCat(R"({"code": "x)", i, R"("})"));
  }
  v1::RecordExecutionsResponse response;
  ASSERT_TRUE(client_->telemetry().RecordExecutions(&ctx, request, &response).ok());
  ASSERT_EQ(response.accepted(), 4);

  ASSERT_EQ(Run({"usage", "code_analysis", "--window", "7d"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("window:             168h"));
  EXPECT_THAT(out, HasSubstr("executions:         4"));
  EXPECT_THAT(out, HasSubstr("success rate:       75.0%"));
  EXPECT_THAT(out, HasSubstr("latency p50/p95/p99: 1.000s"));
  ASSERT_EQ(Run({"--json", "usage", "code_analysis"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("\"executions\": \"4\""));
  // The server judges the window's range.
  EXPECT_EQ(Run({"usage", "code_analysis", "--window", "1s"}, &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("window"));
}

}  // namespace
}  // namespace elexirion
