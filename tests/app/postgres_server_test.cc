// The server on the PostgreSQL store (store.driver=postgres) against a real PostgreSQL server
// this test starts: start-up with a wrong DSN or an unreachable database fails with a clear
// message (password redacted); a database lost at run time gives UNAVAILABLE to callers, the
// server keeps running, and it recovers when the database returns.
#include "tests/testutil/postgres_server.h"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testutil/test_server.h"

namespace elexirion {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testutil::PostgresServer;
using testutil::ServerProcess;
using testutil::TempDir;

constexpr char kPassword[] = "hunter2-do-not-log";

std::vector<std::string> Args(const std::string& dsn) {
  return {"--grpc.listen=127.0.0.1:0", "--http.listen=127.0.0.1:0", "--store.driver=postgres",
          "--store.postgres_dsn=" + dsn, "--shutdown.grace=3s"};
}

std::unique_ptr<PostgresServer> StartPostgres() {
  auto server = PostgresServer::Start();
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

// A loopback port nobody listens on: a stopped PostgreSQL server's.
int DeadPort() {
  auto pg = PostgresServer::Start();
  if (!pg.ok()) return 1;
  const int port = (*pg)->port();
  return port;  // the server stops when `pg` goes
}

TEST(PostgresServerProcessTest, UnreachableDatabaseExitsNonZeroWithRedactedDsn) {
  const int port = DeadPort();
  for (const std::string& dsn :
       {absl::StrCat("host=127.0.0.1 port=", port, " user=elx password=", kPassword, " dbname=elx"),
        absl::StrCat("postgresql://elx:", kPassword, "@127.0.0.1:", port, "/elx")}) {
    auto process = ServerProcess::Start(Args(dsn));
    ASSERT_FALSE(process.ok()) << dsn;
    const std::string message(process.status().message());
    EXPECT_THAT(message, HasSubstr("status 1"));
    EXPECT_THAT(message, HasSubstr("store.postgres_dsn"));
    EXPECT_THAT(message, HasSubstr("cannot connect to PostgreSQL"));
    EXPECT_THAT(message, HasSubstr(absl::StrCat(port)));
    EXPECT_THAT(message, Not(HasSubstr(kPassword)));
  }
}

TEST(PostgresServerProcessTest, WrongDatabaseAndMalformedDsnExitNonZero) {
  auto pg = StartPostgres();
  ASSERT_NE(pg, nullptr);
  auto missing =
      ServerProcess::Start(Args(absl::StrCat(pg->Dsn("no_such_db"), " password=", kPassword)));
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("store.postgres_dsn"));
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("no_such_db"));
  EXPECT_THAT(std::string(missing.status().message()), Not(HasSubstr(kPassword)));

  auto malformed =
      ServerProcess::Start(Args(absl::StrCat("host=127.0.0.1 password=", kPassword, " bogus")));
  ASSERT_FALSE(malformed.ok());
  EXPECT_THAT(std::string(malformed.status().message()), HasSubstr("store.postgres_dsn"));
  EXPECT_THAT(std::string(malformed.status().message()), Not(HasSubstr(kPassword)));
}

// --check-store opens the configured store and runs its integrity check: it passes on a
// sound database and names what is wrong otherwise (here an example whose dataset is gone,
// which no foreign key prevents since schema 3), with the password redacted throughout.
TEST(PostgresServerProcessTest, CheckStoreReportsWhatIsWrong) {
  auto pg = StartPostgres();
  ASSERT_NE(pg, nullptr);
  auto dsn = pg->CreateDatabase("checked");
  ASSERT_TRUE(dsn.ok()) << dsn.status();
  const std::string server = testutil::BinaryPath("server/app/elexirion-server");
  const std::vector<std::string> check = {server, "--check-store", "--store.driver=postgres",
                                          absl::StrCat("--store.postgres_dsn=", *dsn,
                                                       " password=", kPassword)};
  std::string output;
  {
    // The server creates the schema; the check never does (it comes after).
    auto started = ServerProcess::Start(
        {"--grpc.listen=127.0.0.1:0", "--http.listen=127.0.0.1:0", "--store.driver=postgres",
         "--store.postgres_dsn=" + *dsn});
    ASSERT_TRUE(started.ok()) << started.status();
  }
  ASSERT_EQ(testutil::RunCommand(check, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("store check passed (postgres)"));

  ASSERT_TRUE(pg->Exec("checked",
                       "INSERT INTO examples (dataset, id, input_json, expected_output_json, "
                       "metadata_json, content_hash, created_at) VALUES ('gone', 'e1', '{}', "
                       "'{}', '{}', 'h1', 0)")
                  .ok());
  EXPECT_EQ(testutil::RunCommand(check, &output), 1) << output;
  EXPECT_THAT(output, HasSubstr("store check failed"));
  EXPECT_THAT(output, HasSubstr("dataset gone does not exist but 1 examples name it"));
  EXPECT_THAT(output, HasSubstr("password=***"));
  EXPECT_THAT(output, Not(HasSubstr(kPassword)));

  // It neither creates nor migrates a store.
  TempDir dir;
  const std::vector<std::string> sqlite_check = {server, "--check-store",
                                                 "--store.sqlite_path=" + dir.File("s.sqlite")};
  EXPECT_EQ(testutil::RunCommand(sqlite_check, &output), 1) << output;
  EXPECT_THAT(output, HasSubstr("no SQLite database at"));
  EXPECT_FALSE(std::filesystem::exists(dir.File("s.sqlite")));
  {
    auto created = ServerProcess::Start({"--grpc.listen=127.0.0.1:0", "--http.listen=127.0.0.1:0",
                                         "--store.sqlite_path=" + dir.File("s.sqlite")});
    ASSERT_TRUE(created.ok()) << created.status();
  }
  EXPECT_EQ(testutil::RunCommand(sqlite_check, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("store check passed (sqlite)"));
  // A file at an older schema version is refused, not upgraded.
  ASSERT_EQ(testutil::RunCommand({"sqlite3", dir.File("s.sqlite"),
                                  "DELETE FROM schema_migrations WHERE version = (SELECT "
                                  "max(version) FROM schema_migrations)"},
                                 &output),
            0)
      << output;
  EXPECT_EQ(testutil::RunCommand(sqlite_check, &output), 1) << output;
  EXPECT_THAT(output, HasSubstr("this binary's is"));

  auto empty = pg->CreateDatabase("empty");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(testutil::RunCommand({server, "--check-store", "--store.driver=postgres",
                                  "--store.postgres_dsn=" + *empty},
                                 &output),
            1)
      << output;
  EXPECT_THAT(output, HasSubstr("is at schema version 0, this binary's is"));
  auto version = pg->Exec("empty", "SELECT 1");  // still reachable, and still empty:
  ASSERT_TRUE(version.ok());
  EXPECT_FALSE(pg->Exec("empty", "SELECT 1 FROM schema_migrations").ok());
  EXPECT_EQ(testutil::RunCommand({server, "--check-store", "--store.driver=mysql"}, &output), 2)
      << output;
}

TEST(PostgresServerProcessTest, StartsAndServesOnPostgres) {
  auto pg = StartPostgres();
  ASSERT_NE(pg, nullptr);
  auto dsn = pg->CreateDatabase("elx");
  ASSERT_TRUE(dsn.ok()) << dsn.status();
  auto process = ServerProcess::Start(Args(*dsn));
  ASSERT_TRUE(process.ok()) << process.status();
  auto client = client::Client::Create({(*process)->address()});
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_TRUE((*client)->CheckHealth().ok());
}

// Creates dataset `name` through the API.
grpc::Status CreateDataset(const client::Client& client, const std::string& name) {
  grpc::ClientContext context;
  client.Prepare(&context);
  v1::CreateDatasetRequest request;
  request.mutable_dataset()->set_name(name);
  v1::Dataset out;
  return client.datasets().CreateDataset(&context, request, &out);
}

grpc::Status ListDatasets(const client::Client& client, int* count) {
  grpc::ClientContext context;
  client.Prepare(&context);
  v1::ListDatasetsRequest request;
  v1::ListDatasetsResponse response;
  grpc::Status status = client.datasets().ListDatasets(&context, request, &response);
  *count = response.datasets_size();
  return status;
}

TEST(PostgresServerTest, LostDatabaseIsUnavailableAndTheServerRecovers) {
  auto pg = StartPostgres();
  ASSERT_NE(pg, nullptr);
  auto dsn = pg->CreateDatabase("elx");
  ASSERT_TRUE(dsn.ok()) << dsn.status();
  TempDir dir;
  config::ServerConfig config = testutil::TestConfig(dir);
  config.store.driver = "postgres";
  config.store.postgres_dsn = *dsn;
  auto server = testutil::InProcessServer::Start(config);
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = (*server)->NewClient();
  ASSERT_TRUE(CreateDataset(*client, "before").ok());

  ASSERT_TRUE(pg->Stop().ok());
  int count = 0;
  grpc::Status lost = ListDatasets(*client, &count);
  EXPECT_EQ(lost.error_code(), grpc::StatusCode::UNAVAILABLE) << lost.error_message();
  grpc::Status write = CreateDataset(*client, "during");
  EXPECT_EQ(write.error_code(), grpc::StatusCode::UNAVAILABLE) << write.error_message();
  // Background work (job workers, scheduler, ingestion) keeps failing meanwhile; the server
  // must survive it.
  absl::SleepFor(absl::Seconds(2));

  ASSERT_TRUE(pg->Restart().ok());
  grpc::Status back = ListDatasets(*client, &count);
  EXPECT_TRUE(back.ok()) << back.error_message();
  EXPECT_EQ(count, 1);
  EXPECT_TRUE(CreateDataset(*client, "after").ok());
  ASSERT_TRUE(ListDatasets(*client, &count).ok());
  EXPECT_EQ(count, 2);
}

}  // namespace
}  // namespace elexirion
