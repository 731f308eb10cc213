// TLS and mTLS on loopback with certificates made by openssl for the test.

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testutil/test_server.h"

namespace elexirion {
namespace {

using testutil::InProcessServer;
using testutil::TempDir;

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const std::string d = dir_->path();
    dir_->Write("server.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
    const std::string script = absl::StrCat(
        "set -e; cd ", d, "; ",
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=elexirion-test-ca "
        "-keyout ca.key -out ca.pem 2>/dev/null; ",
        "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key "
        "-out server.csr 2>/dev/null; ",
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
        "-extfile server.ext -out server.pem 2>/dev/null; ",
        "openssl req -newkey rsa:2048 -nodes -subj /CN=client -keyout client.key "
        "-out client.csr 2>/dev/null; ",
        "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
        "-out client.pem 2>/dev/null");
    std::string out;
    ASSERT_EQ(testutil::RunCommand({"sh", "-c", script}, &out), 0) << out;
  }
  static void TearDownTestSuite() { delete dir_; }

  std::unique_ptr<InProcessServer> Start(bool mtls) {
    TempDir* d = dir_;
    config::ServerConfig config = testutil::TestConfig(data_);
    config.tls.cert_file = d->File("server.pem");
    config.tls.key_file = d->File("server.key");
    if (mtls) {
      config.tls.client_ca_file = d->File("ca.pem");
      config.tls.require_client_cert = true;
    }
    auto server = InProcessServer::Start(config);
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? std::move(*server) : nullptr;
  }

  std::unique_ptr<client::Client> Client(const InProcessServer& server, bool with_ca,
                                         bool with_cert) {
    client::Client::Options options;
    options.address = server.address();
    options.deadline = absl::Seconds(5);
    if (with_ca) options.tls_ca_pem = testutil::ReadFile(dir_->File("ca.pem"));
    if (with_cert) {
      options.tls_cert_pem = testutil::ReadFile(dir_->File("client.pem"));
      options.tls_key_pem = testutil::ReadFile(dir_->File("client.key"));
    }
    return *client::Client::Create(options);
  }

  static TempDir* dir_;
  TempDir data_;
};

TempDir* TlsTest::dir_ = nullptr;

TEST_F(TlsTest, TlsServesVerifiedClientsAndRefusesPlaintext) {
  auto server = Start(/*mtls=*/false);
  ASSERT_NE(server, nullptr);
  EXPECT_TRUE(Client(*server, true, false)->CheckHealth().ok());
  EXPECT_FALSE(Client(*server, false, false)->CheckHealth().ok());  // plaintext
}

TEST_F(TlsTest, MutualTlsRequiresAClientCertificate) {
  auto server = Start(/*mtls=*/true);
  ASSERT_NE(server, nullptr);
  EXPECT_TRUE(Client(*server, true, true)->CheckHealth().ok());
  EXPECT_FALSE(Client(*server, true, false)->CheckHealth().ok());
  // The server keeps serving after the refused handshake.
  EXPECT_TRUE(Client(*server, true, true)->CheckHealth().ok());
}

}  // namespace
}  // namespace elexirion
