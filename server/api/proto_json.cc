#include "server/api/proto_json.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"

namespace elexirion::api {

absl::StatusOr<nlohmann::json> StructToJson(const google::protobuf::Struct& value) {
  std::string text;
  auto status = google::protobuf::util::MessageToJsonString(value, &text);
  if (!status.ok()) return absl::InvalidArgumentError(status.message().ToString());
  auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return absl::InternalError("struct did not convert to JSON");
  return json;
}

namespace {

template <typename Message>
absl::Status FromJson(const nlohmann::json& json, Message* out) {
  const std::string text = json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  auto status = google::protobuf::util::JsonStringToMessage(text, out);
  if (!status.ok()) {
    return absl::InternalError(absl::StrCat("JSON did not convert: ", status.message().ToString()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status JsonToStruct(const nlohmann::json& json, google::protobuf::Struct* out) {
  if (!json.is_object()) return absl::InvalidArgumentError("expected a JSON object");
  return FromJson(json, out);
}

absl::Status JsonToValue(const nlohmann::json& json, google::protobuf::Value* out) {
  return FromJson(json, out);
}

}  // namespace elexirion::api
