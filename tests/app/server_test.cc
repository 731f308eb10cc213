// The real server in-process on 127.0.0.1:0, spoken to over gRPC.
#include <thread>

#include "absl/time/clock.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "server/store/store.h"
#include "tests/testutil/test_server.h"

namespace elexirion {
namespace {

using ::testing::HasSubstr;
using testutil::InProcessServer;
using testutil::TempDir;
using testutil::TestConfig;

constexpr char kToken[] = "test-token-0123456789abcdef";

class ServerTest : public ::testing::Test {
 protected:
  void StartServer(config::ServerConfig config) {
    auto server = InProcessServer::Start(std::move(config));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }
  void SetUp() override { StartServer(TestConfig(dir_)); }

  grpc::Status ListJobs(const client::Client& client, v1::ListJobsResponse* response,
                        const v1::ListJobsRequest& request = {}) {
    grpc::ClientContext context;
    client.Prepare(&context);
    return client.optimizer().ListJobs(&context, request, response);
  }

  TempDir dir_;
  std::unique_ptr<InProcessServer> server_;
};

TEST_F(ServerTest, HealthServesOverallAndPerService) {
  auto client = server_->NewClient();
  EXPECT_TRUE(client->CheckHealth("").ok());
  EXPECT_TRUE(client->CheckHealth("elexirion.v1.OptimizerService").ok());
  EXPECT_TRUE(client->CheckHealth("elexirion.v1.TelemetryService").ok());
  absl::Status unknown = client->CheckHealth("no.such.Service");
  EXPECT_EQ(unknown.code(), absl::StatusCode::kNotFound) << unknown;
}

TEST_F(ServerTest, ListJobsOnEmptyStore) {
  auto client = server_->NewClient();
  v1::ListJobsResponse response;
  grpc::Status status = ListJobs(*client, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.jobs_size(), 0);
  EXPECT_TRUE(response.next_page_token().empty());
}

TEST_F(ServerTest, JobsListGetAndCancelFromTheStore) {
  v1::OptimizeModuleRequest request;
  request.set_program_name("code_analysis");
  store::JobRecord record;
  record.program_name = "code_analysis";
  record.optimizer = "bootstrap_few_shot";
  record.request = request.SerializeAsString();
  // Not claimable for an hour, so the server's workers leave it queued.
  record.run_after = absl::Now() + absl::Hours(1);
  auto created = server_->server().store()->CreateJob(record);
  ASSERT_TRUE(created.ok()) << created.status();

  auto client = server_->NewClient();
  v1::ListJobsResponse list;
  ASSERT_TRUE(ListJobs(*client, &list).ok());
  ASSERT_EQ(list.jobs_size(), 1);
  EXPECT_EQ(list.jobs(0).id(), created->id);
  EXPECT_EQ(list.jobs(0).state(), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(list.jobs(0).request().program_name(), "code_analysis");

  v1::ListJobsRequest running_only;
  running_only.add_states(v1::JOB_STATE_RUNNING);
  v1::ListJobsResponse none;
  ASSERT_TRUE(ListJobs(*client, &none, running_only).ok());
  EXPECT_EQ(none.jobs_size(), 0);

  grpc::ClientContext cancel_ctx;
  client->Prepare(&cancel_ctx);
  v1::CancelJobRequest cancel;
  cancel.set_id(created->id);
  v1::Job cancelled;
  ASSERT_TRUE(client->optimizer().CancelJob(&cancel_ctx, cancel, &cancelled).ok());
  EXPECT_EQ(cancelled.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(cancelled.end_reason(), v1::END_REASON_CANCELLED);
  EXPECT_EQ(cancelled.last_event_seq(), 1);

  // Cancelling again: the job already ended.
  grpc::ClientContext again_ctx;
  client->Prepare(&again_ctx);
  v1::Job again;
  EXPECT_EQ(client->optimizer().CancelJob(&again_ctx, cancel, &again).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);

  grpc::ClientContext get_ctx;
  client->Prepare(&get_ctx);
  v1::GetJobRequest get;
  get.set_id(created->id);
  v1::Job job;
  ASSERT_TRUE(client->optimizer().GetJob(&get_ctx, get, &job).ok());
  EXPECT_EQ(job.state(), v1::JOB_STATE_CANCELLED);
}

TEST_F(ServerTest, BadRequestFieldsAreNamed) {
  auto client = server_->NewClient();
  {
    grpc::ClientContext context;
    client->Prepare(&context);
    v1::Job job;
    grpc::Status status = client->optimizer().GetJob(&context, v1::GetJobRequest(), &job);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr("id"));
  }
  {
    grpc::ClientContext context;
    client->Prepare(&context);
    v1::GetJobRequest request;
    request.set_id("no-such-job");
    v1::Job job;
    EXPECT_EQ(client->optimizer().GetJob(&context, request, &job).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  {
    v1::ListJobsRequest request;
    request.set_page_size(5000);
    v1::ListJobsResponse response;
    grpc::Status status = ListJobs(*client, &response, request);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr("page_size"));
  }
  {
    v1::ListJobsRequest request;
    request.set_page_token("garbage!");
    v1::ListJobsResponse response;
    EXPECT_EQ(ListJobs(*client, &response, request).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    v1::ListJobsRequest request;
    request.add_states(static_cast<v1::JobState>(42));
    v1::ListJobsResponse response;
    grpc::Status status = ListJobs(*client, &response, request);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr("states"));
  }
}

TEST_F(ServerTest, OversizeMessageIsRejectedAndServerKeepsServing) {
  server_.reset();
  config::ServerConfig config = TestConfig(dir_);
  config.grpc.max_receive_message_bytes = 64 << 10;
  StartServer(config);
  auto client = server_->NewClient();
  v1::ListJobsRequest big;
  big.set_program_name(std::string(256 << 10, 'x'));
  v1::ListJobsResponse response;
  grpc::Status status = ListJobs(*client, &response, big);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_TRUE(ListJobs(*client, &response).ok());
  EXPECT_TRUE(client->CheckHealth().ok());
}

TEST_F(ServerTest, SecondServerOnTheSamePortFailsToStart) {
  config::ServerConfig config = TestConfig(dir_);
  config.grpc.listen = server_->address();
  config.store.sqlite_path = dir_.File("second.sqlite");
  auto second = InProcessServer::Start(config);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("grpc.listen"));
  // The first server is unaffected.
  EXPECT_TRUE(server_->NewClient()->CheckHealth().ok());
}

TEST_F(ServerTest, HttpPortInUseFailsToStart) {
  config::ServerConfig config = TestConfig(dir_);
  config.http.listen = absl::StrCat("127.0.0.1:", server_->http_port());
  config.store.sqlite_path = dir_.File("second.sqlite");
  auto second = InProcessServer::Start(config);
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("http.listen"));
}

class AuthTest : public ServerTest {
 protected:
  void SetUp() override {
    config::ServerConfig config = TestConfig(dir_);
    config.auth.tokens = {kToken};
    StartServer(config);
  }
};

TEST_F(AuthTest, NoWrongAndRightToken) {
  v1::ListJobsResponse response;
  grpc::Status none = ListJobs(*server_->NewClient(), &response);
  EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  grpc::Status wrong = ListJobs(*server_->NewClient("wrong-token-0123456789abcdef"), &response);
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(wrong.error_message().find("wrong-token"), std::string::npos);
  grpc::Status right = ListJobs(*server_->NewClient(kToken), &response);
  EXPECT_TRUE(right.ok()) << right.error_message();
}

TEST_F(AuthTest, HealthNeedsNoToken) {
  EXPECT_TRUE(server_->NewClient()->CheckHealth().ok());
}

TEST_F(AuthTest, StreamsAndUnimplementedRpcsAlsoNeedTheToken) {
  auto client = server_->NewClient();
  grpc::ClientContext context;
  client->Prepare(&context);
  v1::StreamProgressRequest request;
  request.set_job_id("x");
  auto reader = client->optimizer().StreamProgress(&context, request);
  v1::ProgressEvent event;
  EXPECT_FALSE(reader->Read(&event));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);

  grpc::ClientContext context2;
  client->Prepare(&context2);
  v1::ExecutePipelineResponse response;
  EXPECT_EQ(client->pipelines()
                .ExecutePipeline(&context2, v1::ExecutePipelineRequest(), &response)
                .error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(ServerTest, ShutdownTurnsHealthNotServingAndRefusesCalls) {
  auto client = server_->NewClient();
  ASSERT_TRUE(client->CheckHealth().ok());
  server_->server().Shutdown();
  v1::ListJobsResponse response;
  EXPECT_FALSE(ListJobs(*client, &response).ok());
}

TEST_F(ServerTest, ManyConcurrentCallsSucceed) {
  auto client = server_->NewClient();
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        v1::ListJobsResponse response;
        if (ListJobs(*client, &response).ok()) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 200);
}

}  // namespace
}  // namespace elexirion
