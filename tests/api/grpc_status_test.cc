#include "server/api/grpc_status.h"

#include "gtest/gtest.h"
#include "server/common/logging.h"

namespace elexirion::api {
namespace {

TEST(GrpcStatusTest, MapsEveryCodeOneToOne) {
  for (int code = 1; code <= 16; ++code) {
    absl::Status s(static_cast<absl::StatusCode>(code), "m");
    grpc::Status g = ToGrpcStatus(s);
    EXPECT_EQ(static_cast<int>(g.error_code()), code);
    EXPECT_EQ(g.error_message(), "m");
  }
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
}

TEST(GrpcStatusTest, TruncatesLongMessages) {
  grpc::Status g = ToGrpcStatus(absl::InternalError(std::string(5000, 'x')));
  EXPECT_EQ(g.error_message().size(), kMaxErrorMessageBytes);
  EXPECT_EQ(g.error_message().substr(g.error_message().size() - 12), "...TRUNCATED");
}

TEST(GrpcStatusTest, TruncationNeverSplitsUtf8) {
  std::string text;
  while (text.size() < 3000) text += "\xc3\xa9";  // é
  grpc::Status g = ToGrpcStatus(absl::InternalError(text));
  std::string body = g.error_message().substr(0, g.error_message().size() - 12);
  EXPECT_EQ(body.size() % 2, 0u);
}

TEST(GrpcStatusTest, RedactsSecrets) {
  logging::RegisterSecret("sk-ant-CANARY-status-0001");
  grpc::Status g = ToGrpcStatus(absl::InternalError("echo: sk-ant-CANARY-status-0001"));
  EXPECT_EQ(g.error_message().find("CANARY"), std::string::npos);
}

}  // namespace
}  // namespace elexirion::api
