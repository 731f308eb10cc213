// TelemetryService over gRPC against the real server and a real SQLite file: durable
// acknowledgement, idempotent retries, rejections of single records, the harvest threshold,
// client streaming and usage statistics.
#include <signal.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "server/store/sqlite_store.h"
#include "tests/testutil/test_server.h"

namespace elexirion {
namespace {

using ::testing::HasSubstr;
using testutil::InProcessServer;
using testutil::ServerProcess;
using testutil::TempDir;

google::protobuf::Struct Struct(const std::string& json) {
  google::protobuf::Struct out;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &out).ok()) << json;
  return out;
}

// A successful code analysis with findings: the design heuristic scores it 8.5.
v1::ExecutionRecord GoodRecord(const std::string& pipeline, int n) {
  v1::ExecutionRecord r;
  r.set_pipeline_name(pipeline);
  r.set_program_version(1);
  r.set_success(true);
  r.mutable_duration()->set_seconds(1 + n % 5);
  *r.mutable_input() = Struct(absl::StrCat(R"({"code": "def f", "n": )", n, "}"));
  *r.mutable_output() = Struct(R"({"severity": "high", "findings": ["sql injection"]})");
  *r.mutable_metadata() = Struct(R"({"runtime": "pipeline_ex"})");
  return r;
}

class TelemetryTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(""); }

  void Start(const std::string& learning_yaml) {
    server_.reset();
    config::ServerConfig config = testutil::TestConfig(dir_);
    if (!learning_yaml.empty()) config.learning = YAML::Load(learning_yaml);
    auto server = InProcessServer::Start(config);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    client_ = server_->NewClient();
  }

  grpc::Status Record(const v1::ExecutionRecord& record, v1::RecordExecutionResponse* response) {
    grpc::ClientContext ctx;
    client_->Prepare(&ctx);
    v1::RecordExecutionRequest request;
    *request.mutable_record() = record;
    return client_->telemetry().RecordExecution(&ctx, request, response);
  }

  grpc::Status RecordBatch(const std::vector<v1::ExecutionRecord>& records,
                           v1::RecordExecutionsResponse* response) {
    grpc::ClientContext ctx;
    client_->Prepare(&ctx);
    v1::RecordExecutionsRequest request;
    for (const auto& r : records) *request.add_records() = r;
    return client_->telemetry().RecordExecutions(&ctx, request, response);
  }

  v1::UsageStats Usage(const std::string& pipeline) {
    grpc::ClientContext ctx;
    client_->Prepare(&ctx);
    v1::GetUsageStatsRequest request;
    request.set_pipeline_name(pipeline);
    v1::UsageStats stats;
    grpc::Status status = client_->telemetry().GetUsageStats(&ctx, request, &stats);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return stats;
  }

  std::vector<v1::Example> Examples(const std::string& dataset) {
    grpc::ClientContext ctx;
    client_->Prepare(&ctx);
    v1::ListExamplesRequest request;
    request.set_dataset(dataset);
    request.set_page_size(1000);
    v1::ListExamplesResponse response;
    grpc::Status status = client_->datasets().ListExamples(&ctx, request, &response);
    if (!status.ok()) return {};
    return {response.examples().begin(), response.examples().end()};
  }

  void ExpectHealthy() { EXPECT_TRUE(client_->CheckHealth().ok()); }

  TempDir dir_;
  std::unique_ptr<InProcessServer> server_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(TelemetryTest, RecordIsStoredScoredAndHarvested) {
  v1::RecordExecutionResponse response;
  ASSERT_TRUE(Record(GoodRecord("code_analysis", 1), &response).ok());
  EXPECT_EQ(response.id().size(), 16u);
  EXPECT_DOUBLE_EQ(response.quality_score(), 8.5);
  EXPECT_TRUE(response.harvested());

  // The acknowledged record is in the store.
  auto rows = server_->server().store()->ListExecutions("code_analysis", absl::InfinitePast(),
                                                        absl::InfiniteFuture(), 0);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].id, response.id());
  EXPECT_EQ((*rows)[0].program_version, 1);
  EXPECT_DOUBLE_EQ((*rows)[0].duration_seconds, 2);

  // ...and became a training example in the pipeline's dataset, in the design's layout.
  auto examples = Examples("code_analysis");
  ASSERT_EQ(examples.size(), 1u);
  const v1::Example& e = examples[0];
  EXPECT_EQ(e.id().size(), 8u);
  EXPECT_EQ(e.input().fields().at("code").string_value(), "def f");
  EXPECT_EQ(e.expected_output().fields().at("severity").string_value(), "high");
  const auto& meta = e.metadata().fields();
  EXPECT_EQ(meta.at("source").string_value(), "successful_execution");
  EXPECT_DOUBLE_EQ(meta.at("quality_score").number_value(), 8.5);
  EXPECT_EQ(meta.at("execution_id").string_value(), response.id());
  EXPECT_EQ(meta.at("pipeline_config").struct_value().fields().at("name").string_value(),
            "code_analysis");
  EXPECT_FALSE(e.created_at().empty());
}

TEST_F(TelemetryTest, HeuristicScoresAndTheHarvestThreshold) {
  struct Case {
    bool success;
    std::string output;
    std::optional<double> quality;
    double expected_quality;
    bool harvested;
  };
  const std::vector<Case> cases = {
      {true, R"({"findings": ["x"]})", std::nullopt, 8.5, true},
      {true, R"({"analyze": {"findings": ["nested"]}})", std::nullopt, 8.5, true},
      {true, R"({"findings": []})", std::nullopt, 7.0, false},
      {true, R"({"severity": "low"})", std::nullopt, 7.0, false},
      {true, R"({"status": "partial", "findings": ["x"]})", std::nullopt, 5.0, false},
      {false, R"({"findings": ["x"]})", std::nullopt, 2.0, false},
      {true, R"({"a": "given 8.0"})", 8.0, 8.0, true},
      {true, R"({"a": "given 7.99"})", 7.99, 7.99, false},
      {false, R"({"a": "failed but rated 9.5"})", 9.5, 9.5, false},
  };
  int harvested = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    v1::ExecutionRecord r = GoodRecord("threshold", static_cast<int>(i));
    r.set_success(c.success);
    *r.mutable_output() = Struct(c.output);
    if (c.quality.has_value()) r.set_quality_score(*c.quality);
    v1::RecordExecutionResponse response;
    ASSERT_TRUE(Record(r, &response).ok()) << i;
    EXPECT_DOUBLE_EQ(response.quality_score(), c.expected_quality) << "case " << i;
    EXPECT_EQ(response.harvested(), c.harvested) << "case " << i;
    harvested += c.harvested ? 1 : 0;
  }
  EXPECT_EQ(static_cast<int>(Examples("threshold").size()), harvested);
}

TEST_F(TelemetryTest, ConfiguredThresholdAndDatasetPerPipeline) {
  Start(R"(
pipelines:
  strict:
    dataset: strict-gold
    harvest_threshold: 9.0
    daily: {enabled: false}
    weekly: {enabled: false}
)");
  v1::RecordExecutionResponse response;
  ASSERT_TRUE(Record(GoodRecord("strict", 1), &response).ok());
  EXPECT_FALSE(response.harvested()) << "8.5 is below this pipeline's 9.0";
  v1::ExecutionRecord best = GoodRecord("strict", 2);
  best.set_quality_score(9.5);
  ASSERT_TRUE(Record(best, &response).ok());
  EXPECT_TRUE(response.harvested());
  EXPECT_EQ(Examples("strict-gold").size(), 1u);
  EXPECT_TRUE(Examples("strict").empty());
}

TEST_F(TelemetryTest, RetriedRecordIdIsStoredOnce) {
  v1::ExecutionRecord r = GoodRecord("retry", 1);
  r.set_record_id("runtime-42:exec-7");
  v1::RecordExecutionResponse first, second;
  ASSERT_TRUE(Record(r, &first).ok());
  ASSERT_TRUE(Record(r, &second).ok());
  EXPECT_EQ(first.id(), second.id());
  EXPECT_TRUE(first.harvested());
  EXPECT_FALSE(second.harvested()) << "the retry adds nothing";
  EXPECT_EQ(Usage("retry").executions(), 1);
  EXPECT_EQ(Examples("retry").size(), 1u);
}

TEST_F(TelemetryTest, BadSingleRecordsNameTheField) {
  struct Case {
    std::function<void(v1::ExecutionRecord*)> mutate;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](v1::ExecutionRecord* r) { r->clear_pipeline_name(); }, "record.pipeline_name: required"},
      {[](v1::ExecutionRecord* r) { r->set_pipeline_name("Bad Name"); },
       "record.pipeline_name: must match"},
      {[](v1::ExecutionRecord* r) { r->set_quality_score(10.5); }, "record.quality_score"},
      {[](v1::ExecutionRecord* r) { r->set_quality_score(-1); }, "record.quality_score"},
      {[](v1::ExecutionRecord* r) { r->mutable_duration()->set_seconds(-3); }, "record.duration"},
      {[](v1::ExecutionRecord* r) { r->set_program_version(-1); }, "record.program_version"},
      {[](v1::ExecutionRecord* r) { r->mutable_time()->set_seconds(4102444800); },  // 2100
       "record.time: is in the future"},
      {[](v1::ExecutionRecord* r) { r->mutable_time()->set_seconds(5); }, "record.time"},
      {[](v1::ExecutionRecord* r) { r->set_record_id("has spaces"); }, "record.record_id"},
  };
  for (const Case& c : cases) {
    v1::ExecutionRecord r = GoodRecord("bad", 1);
    c.mutate(&r);
    v1::RecordExecutionResponse response;
    grpc::Status status = Record(r, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.message;
    EXPECT_THAT(status.error_message(), HasSubstr(c.message));
  }
  grpc::ClientContext ctx;
  client_->Prepare(&ctx);
  v1::RecordExecutionResponse response;
  grpc::Status missing =
      client_->telemetry().RecordExecution(&ctx, v1::RecordExecutionRequest(), &response);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(missing.error_message(), HasSubstr("record: required"));
  // Nothing was stored, the server is healthy and still records good ones.
  EXPECT_EQ(Usage("bad").executions(), 0);
  ExpectHealthy();
  ASSERT_TRUE(Record(GoodRecord("bad", 2), &response).ok());
  EXPECT_EQ(Usage("bad").executions(), 1);
}

TEST_F(TelemetryTest, BatchRejectsBadRecordsAloneAndKeepsTheRest) {
  std::vector<v1::ExecutionRecord> batch;
  for (int i = 0; i < 10; ++i) batch.push_back(GoodRecord("batch", i));
  batch[2].set_pipeline_name("");
  batch[5].set_quality_score(42);
  batch[7].mutable_duration()->set_nanos(-1);
  v1::RecordExecutionsResponse response;
  ASSERT_TRUE(RecordBatch(batch, &response).ok());
  EXPECT_EQ(response.accepted(), 7);
  EXPECT_EQ(response.harvested(), 7);
  ASSERT_EQ(response.rejected_size(), 3);
  EXPECT_EQ(response.rejected(0).index(), 2);
  EXPECT_THAT(response.rejected(0).reason(), HasSubstr("records[2].pipeline_name: required"));
  EXPECT_EQ(response.rejected(1).index(), 5);
  EXPECT_THAT(response.rejected(1).reason(), HasSubstr("records[5].quality_score"));
  EXPECT_EQ(response.rejected(2).index(), 7);
  EXPECT_THAT(response.rejected(2).reason(), HasSubstr("records[7].duration"));
  EXPECT_EQ(Usage("batch").executions(), 7);

  // Whole-batch problems: empty, and more than 1000 records.
  v1::RecordExecutionsResponse empty_response;
  grpc::Status empty = RecordBatch({}, &empty_response);
  EXPECT_EQ(empty.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(empty.error_message(), HasSubstr("records: 1..1000"));
  std::vector<v1::ExecutionRecord> huge(1001, GoodRecord("batch", 99));
  grpc::Status too_many = RecordBatch(huge, &empty_response);
  EXPECT_EQ(too_many.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Usage("batch").executions(), 7) << "a refused batch stores nothing";
  ExpectHealthy();
}

// What a client not built from our protos may send: RecordExecutions reads the records'
// Structs from the wire itself, so a string that is not UTF-8 rejects its record alone with
// the field named; a malformed request is INVALID_ARGUMENT, not gRPC's empty UNIMPLEMENTED.
TEST_F(TelemetryTest, ForeignBytesGetClearErrorsFromRecordExecutions) {
  grpc::GenericStub stub(client_->channel());
  auto call = [&](const std::string& bytes, v1::RecordExecutionsResponse* response) {
    grpc::Slice slice(bytes);
    grpc::ByteBuffer request(&slice, 1), reply;
    grpc::ClientContext ctx;
    client_->Prepare(&ctx);
    absl::Notification done;
    grpc::Status status;
    stub.UnaryCall(&ctx, "/elexirion.v1.TelemetryService/RecordExecutions", grpc::StubOptions(),
                   &request, &reply, [&](grpc::Status s) {
                     status = std::move(s);
                     done.Notify();
                   });
    done.WaitForNotification();
    if (status.ok()) {
      std::vector<grpc::Slice> slices;
      EXPECT_TRUE(reply.Dump(&slices).ok());
      std::string text;
      for (const auto& s : slices) text.append(reinterpret_cast<const char*>(s.begin()), s.size());
      EXPECT_TRUE(response->ParseFromString(text));
    }
    return status;
  };
  v1::RecordExecutionsRequest batch;
  for (int i = 0; i < 3; ++i) *batch.add_records() = GoodRecord("foreign", i);
  (*batch.mutable_records(1)->mutable_output()->mutable_fields())["note"].set_string_value(
      "MARK");
  std::string bytes = batch.SerializeAsString();
  bytes.replace(bytes.find("MARK"), 4, "\xff\xfe\xfd\xfc");
  v1::RecordExecutionsResponse response;
  grpc::Status status = call(bytes, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.accepted(), 2);
  ASSERT_EQ(response.rejected_size(), 1);
  EXPECT_EQ(response.rejected(0).index(), 1);
  EXPECT_THAT(response.rejected(0).reason(),
              HasSubstr("records[1].output: a key or string is not UTF-8"));

  v1::RecordExecutionsRequest named;
  *named.add_records() = GoodRecord("foreign", 7);
  named.mutable_records(0)->set_record_id("MARK");
  bytes = named.SerializeAsString();
  bytes.replace(bytes.find("MARK"), 4, "\xc0\xafxx");
  status = call(bytes, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("not a valid elexirion.v1.RecordExecutionsRequest"));
  status = call("\x0a\xff\xff\xff", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Usage("foreign").executions(), 2);
  ExpectHealthy();
}

// The stream reads each record from the wire the same way: a record protobuf would refuse
// (a non-UTF-8 string in a Struct, in a string field, or bytes that are no record) is
// rejected alone at its position and the stream goes on.
TEST_F(TelemetryTest, ForeignBytesInAStreamRejectTheirRecordAlone) {
  grpc::GenericStub stub(client_->channel());
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  client_->Prepare(&ctx, absl::Seconds(60));
  auto call = stub.PrepareCall(&ctx, "/elexirion.v1.TelemetryService/StreamExecutions", &cq);
  auto await = [&](intptr_t expected) {
    void* tag = nullptr;
    bool ok = false;
    EXPECT_TRUE(cq.Next(&tag, &ok));
    EXPECT_EQ(reinterpret_cast<intptr_t>(tag), expected);
    return ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(await(1));
  auto marked = [](int n, const char* mark_in, bool in_output) {
    v1::ExecutionRecord r = GoodRecord("foreign_stream", n);
    if (in_output) {
      (*r.mutable_output()->mutable_fields())["note"].set_string_value("MARK");
    } else {
      r.set_record_id("MARK");
    }
    std::string bytes = r.SerializeAsString();
    bytes.replace(bytes.find("MARK"), 4, mark_in);
    return bytes;
  };
  const std::vector<std::string> messages = {
      GoodRecord("foreign_stream", 0).SerializeAsString(),
      marked(1, "\xff\xfe\xfd\xfc", /*in_output=*/true),
      marked(2, "\xc0\xafxx", /*in_output=*/false),
      std::string("\x0a\xff\xff\xff"),
      GoodRecord("foreign_stream", 4).SerializeAsString()};
  for (const std::string& bytes : messages) {
    grpc::Slice slice(bytes);
    grpc::ByteBuffer message(&slice, 1);
    call->Write(message, reinterpret_cast<void*>(2));
    ASSERT_TRUE(await(2));
  }
  call->WritesDone(reinterpret_cast<void*>(3));
  ASSERT_TRUE(await(3));
  grpc::ByteBuffer reply;
  call->Read(&reply, reinterpret_cast<void*>(4));
  ASSERT_TRUE(await(4));
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  ASSERT_TRUE(await(5));
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(reply.Dump(&slices).ok());
  std::string text;
  for (const auto& slice : slices) text.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  v1::RecordExecutionsResponse response;
  ASSERT_TRUE(response.ParseFromString(text));
  EXPECT_EQ(response.accepted(), 2);
  ASSERT_EQ(response.rejected_size(), 3);
  EXPECT_EQ(response.rejected(0).index(), 1);
  EXPECT_THAT(response.rejected(0).reason(),
              HasSubstr("record[1].output: a key or string is not UTF-8"));
  EXPECT_EQ(response.rejected(1).index(), 2);
  EXPECT_THAT(response.rejected(1).reason(),
              HasSubstr("record[2]: not a valid elexirion.v1.ExecutionRecord"));
  EXPECT_EQ(response.rejected(2).index(), 3);
  EXPECT_EQ(Usage("foreign_stream").executions(), 2);
  ExpectHealthy();
}

TEST_F(TelemetryTest, OversizedRecordsAreRejectedByTheLimit) {
  Start("max_record_bytes: 2048\n");
  v1::ExecutionRecord big = GoodRecord("sizes", 1);
  (*big.mutable_output()->mutable_fields())["blob"].set_string_value(std::string(4096, 'x'));
  v1::RecordExecutionResponse single;
  grpc::Status status = Record(big, &single);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("larger than the limit of 2048"));
  v1::RecordExecutionsResponse batch;
  ASSERT_TRUE(RecordBatch({GoodRecord("sizes", 2), big, GoodRecord("sizes", 3)}, &batch).ok());
  EXPECT_EQ(batch.accepted(), 2);
  ASSERT_EQ(batch.rejected_size(), 1);
  EXPECT_EQ(batch.rejected(0).index(), 1);
}

TEST_F(TelemetryTest, StreamIngestsManyRecordsWithRejectionsByPosition) {
  grpc::ClientContext ctx;
  client_->Prepare(&ctx, absl::Seconds(60));
  v1::RecordExecutionsResponse response;
  auto writer = client_->telemetry().StreamExecutions(&ctx, &response);
  constexpr int kRecords = 2345;
  for (int i = 0; i < kRecords; ++i) {
    v1::ExecutionRecord r = GoodRecord("stream", i);
    r.set_record_id(absl::StrCat("s-", i));
    if (i == 17 || i == 2000) r.set_pipeline_name("NOT VALID");
    ASSERT_TRUE(writer->Write(r)) << i;
  }
  ASSERT_TRUE(writer->WritesDone());
  grpc::Status status = writer->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.accepted(), kRecords - 2);
  ASSERT_EQ(response.rejected_size(), 2);
  EXPECT_EQ(response.rejected(0).index(), 17);
  EXPECT_EQ(response.rejected(1).index(), 2000);
  EXPECT_THAT(response.rejected(1).reason(), HasSubstr("record[2000].pipeline_name"));
  // Input differs per record, so every accepted one is a distinct example.
  EXPECT_EQ(response.harvested(), kRecords - 2);
  EXPECT_EQ(Usage("stream").executions(), kRecords - 2);
}

TEST_F(TelemetryTest, UsageStatsOverAWindow) {
  std::vector<v1::ExecutionRecord> batch;
  for (int i = 0; i < 20; ++i) {
    v1::ExecutionRecord r = GoodRecord("usage", i);
    r.set_success(i % 5 != 0);  // 4 failures
    r.mutable_duration()->set_seconds(i + 1);
    r.set_quality_score(i % 2 == 0 ? 6 : 9);
    batch.push_back(r);
  }
  // An old record outside the default 24 h window.
  v1::ExecutionRecord old = GoodRecord("usage", 100);
  old.mutable_time()->set_seconds(absl::ToUnixSeconds(absl::Now() - absl::Hours(48)));
  batch.push_back(old);
  v1::RecordExecutionsResponse response;
  ASSERT_TRUE(RecordBatch(batch, &response).ok());
  ASSERT_EQ(response.accepted(), 21);

  v1::UsageStats stats = Usage("usage");
  EXPECT_EQ(stats.pipeline_name(), "usage");
  EXPECT_EQ(stats.executions(), 20);
  EXPECT_DOUBLE_EQ(stats.success_rate(), 0.8);
  EXPECT_DOUBLE_EQ(stats.mean_quality(), 7.5);
  EXPECT_DOUBLE_EQ(stats.latency_p50_seconds(), 10);
  EXPECT_DOUBLE_EQ(stats.latency_p95_seconds(), 19);
  EXPECT_DOUBLE_EQ(stats.latency_p99_seconds(), 20);
  // Never optimized: every harvested example is new: the 8 successful ones rated 9, and the
  // old record (the heuristic's 8.5; the window does not apply to examples).
  EXPECT_EQ(stats.new_examples_since_optimization(), 9);
  EXPECT_FALSE(stats.has_last_optimization_time());

  grpc::ClientContext ctx;
  client_->Prepare(&ctx);
  v1::GetUsageStatsRequest week;
  week.set_pipeline_name("usage");
  week.mutable_window()->set_seconds(7 * 24 * 3600);
  v1::UsageStats weekly;
  ASSERT_TRUE(client_->telemetry().GetUsageStats(&ctx, week, &weekly).ok());
  EXPECT_EQ(weekly.executions(), 21);

  for (const auto& [name, seconds, message] :
       std::vector<std::tuple<std::string, int64_t, std::string>>{
           {"", 3600, "pipeline_name: required"},
           {"usage", 1, "window: must be between"},
           {"usage", 400LL * 24 * 3600, "window: must be between"}}) {
    grpc::ClientContext bad_ctx;
    client_->Prepare(&bad_ctx);
    v1::GetUsageStatsRequest bad;
    bad.set_pipeline_name(name);
    bad.mutable_window()->set_seconds(seconds);
    v1::UsageStats ignored;
    grpc::Status status = client_->telemetry().GetUsageStats(&bad_ctx, bad, &ignored);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << message;
    EXPECT_THAT(status.error_message(), HasSubstr(message));
  }
}

TEST_F(TelemetryTest, PrometheusExportsBoundedPipelineLabels) {
  Start("max_label_pipelines: 2\n");
  v1::RecordExecutionsResponse response;
  std::vector<v1::ExecutionRecord> batch;
  for (int i = 0; i < 6; ++i) batch.push_back(GoodRecord(absl::StrCat("label-", i), i));
  ASSERT_TRUE(RecordBatch(batch, &response).ok());
  ASSERT_EQ(response.accepted(), 6);
  auto metrics = testutil::HttpGet(server_->http_port(), "/metrics");
  ASSERT_TRUE(metrics.ok());
  const std::string& body = metrics->second;
  EXPECT_THAT(body, HasSubstr("elexirion_execution_commit_rows"));
  // Metrics are process-wide: earlier tests' pipelines may already hold labels. Either way at
  // most 2 of these 6 names get their own label and the rest are counted under "_other".
  int own_labels = 0;
  for (int i = 0; i < 6; ++i) {
    if (body.find(absl::StrCat("pipeline=\"label-", i, "\"")) != std::string::npos) ++own_labels;
  }
  EXPECT_LE(own_labels, 2);
  EXPECT_THAT(
      body,
      HasSubstr(R"(elexirion_executions_recorded_total{outcome="accepted",pipeline="_other"})"));
}

// kill -9 right after the acknowledgement: the record is in the database after a restart.
TEST(TelemetryDurabilityTest, AcknowledgedRecordSurvivesKill9) {
  TempDir dir;
  const std::string db = dir.File("db.sqlite");
  std::vector<std::string> args = {"--grpc.listen=127.0.0.1:0", "--http.listen=127.0.0.1:0",
                                   "--store.sqlite_path=" + db};
  auto server = ServerProcess::Start(args);
  ASSERT_TRUE(server.ok()) << server.status();
  client::Client::Options options;
  options.address = (*server)->address();
  auto client = client::Client::Create(options);
  ASSERT_TRUE(client.ok());
  std::vector<std::string> acknowledged;
  for (int i = 0; i < 20; ++i) {
    grpc::ClientContext ctx;
    (*client)->Prepare(&ctx);
    v1::RecordExecutionRequest request;
    *request.mutable_record() = GoodRecord("durable", i);
    request.mutable_record()->set_record_id(absl::StrCat("d-", i));
    v1::RecordExecutionResponse response;
    ASSERT_TRUE((*client)->telemetry().RecordExecution(&ctx, request, &response).ok());
    acknowledged.push_back(response.id());
  }
  // No graceful anything: the last acknowledgement was the last thing that happened.
  (*server)->Signal(SIGKILL);
  server->reset();

  store::SqliteStore::Options store_options;
  store_options.path = db;
  auto store = store::SqliteStore::Create(store_options);
  ASSERT_TRUE(store.ok()) << store.status();
  auto rows = (*store)->ListExecutions("durable", absl::InfinitePast(), absl::InfiniteFuture(), 0);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), acknowledged.size());
  for (size_t i = 0; i < rows->size(); ++i) EXPECT_EQ((*rows)[i].id, acknowledged[i]);
  auto examples = (*store)->ListExamples("durable", 0, "");
  ASSERT_TRUE(examples.ok());
  EXPECT_EQ(examples->examples.size(), acknowledged.size()) << "harvested with their records";

  // A restarted server sees them too, and a retry of the last record stays a duplicate.
  auto restarted = ServerProcess::Start(args);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  options.address = (*restarted)->address();
  auto again = client::Client::Create(options);
  ASSERT_TRUE(again.ok());
  grpc::ClientContext ctx;
  (*again)->Prepare(&ctx);
  v1::RecordExecutionRequest retry;
  *retry.mutable_record() = GoodRecord("durable", 19);
  retry.mutable_record()->set_record_id("d-19");
  v1::RecordExecutionResponse response;
  ASSERT_TRUE((*again)->telemetry().RecordExecution(&ctx, retry, &response).ok());
  EXPECT_EQ(response.id(), acknowledged.back());
}

}  // namespace
}  // namespace elexirion
