// google.protobuf.Struct / Value <-> nlohmann::json.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "google/protobuf/struct.pb.h"
#include "nlohmann/json.hpp"

namespace elexirion::api {

// An unset Struct becomes an empty object.
absl::StatusOr<nlohmann::json> StructToJson(const google::protobuf::Struct& value);
// The same value as JSON text, byte for byte what StructToJson(value)->dump() gives (keys
// sorted, integral numbers as integers), written straight from the Struct: no tree, which
// matters on the telemetry path (every record's input, output and metadata).
absl::StatusOr<std::string> StructToJsonText(const google::protobuf::Struct& value);
absl::Status JsonToStruct(const nlohmann::json& json, google::protobuf::Struct* out);
absl::Status JsonToValue(const nlohmann::json& json, google::protobuf::Value* out);

}  // namespace elexirion::api
