// google.protobuf.Struct / Value <-> nlohmann::json.
#pragma once

#include "absl/status/statusor.h"
#include "google/protobuf/struct.pb.h"
#include "nlohmann/json.hpp"

namespace elexirion::api {

// An unset Struct becomes an empty object.
absl::StatusOr<nlohmann::json> StructToJson(const google::protobuf::Struct& value);
absl::Status JsonToStruct(const nlohmann::json& json, google::protobuf::Struct* out);
absl::Status JsonToValue(const nlohmann::json& json, google::protobuf::Value* out);

}  // namespace elexirion::api
