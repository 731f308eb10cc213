#include "server/api/grpc_status.h"

#include <string>

#include "server/common/logging.h"

namespace elexirion::api {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  std::string message = logging::Redact(std::string(status.message()));
  if (message.size() > kMaxErrorMessageBytes) {
    constexpr char kSuffix[] = "...TRUNCATED";
    message.resize(kMaxErrorMessageBytes - (sizeof(kSuffix) - 1));
    // Do not leave half a UTF-8 sequence behind.
    while (!message.empty() && (static_cast<unsigned char>(message.back()) & 0xC0) == 0x80) {
      message.pop_back();
    }
    if (!message.empty() && (static_cast<unsigned char>(message.back()) & 0x80) != 0) {
      message.pop_back();
    }
    message += kSuffix;
  }
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), message);
}

}  // namespace elexirion::api
