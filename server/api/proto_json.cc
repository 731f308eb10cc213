#include "server/api/proto_json.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"

namespace elexirion::api {

namespace {

// Direct conversion (no JSON text in between: this runs for every telemetry record).
absl::StatusOr<nlohmann::json> ValueToJson(const google::protobuf::Value& value, int depth) {
  // Struct nesting is bounded by the message size limit already; this keeps recursion sane.
  if (depth > 100) return absl::InvalidArgumentError("nested deeper than 100 levels");
  switch (value.kind_case()) {
    case google::protobuf::Value::kNullValue:
    case google::protobuf::Value::KIND_NOT_SET:
      return nlohmann::json(nullptr);
    case google::protobuf::Value::kNumberValue: {
      const double n = value.number_value();
      if (!std::isfinite(n)) return absl::InvalidArgumentError("numbers must be finite");
      // Integral values stay integers, as JSON text would have them ("n": 1, not 1.0):
      // templates and content hashes see the number the client wrote.
      if (std::fabs(n) < 9007199254740992.0 && n == std::trunc(n)) {
        return nlohmann::json(static_cast<int64_t>(n));
      }
      return nlohmann::json(n);
    }
    case google::protobuf::Value::kStringValue:
      return nlohmann::json(value.string_value());
    case google::protobuf::Value::kBoolValue:
      return nlohmann::json(value.bool_value());
    case google::protobuf::Value::kStructValue: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& [key, field] : value.struct_value().fields()) {
        auto converted = ValueToJson(field, depth + 1);
        if (!converted.ok()) return converted.status();
        out[key] = *std::move(converted);
      }
      return out;
    }
    case google::protobuf::Value::kListValue: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& item : value.list_value().values()) {
        auto converted = ValueToJson(item, depth + 1);
        if (!converted.ok()) return converted.status();
        out.push_back(*std::move(converted));
      }
      return out;
    }
  }
  return nlohmann::json(nullptr);
}

}  // namespace

absl::StatusOr<nlohmann::json> StructToJson(const google::protobuf::Struct& value) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [key, field] : value.fields()) {
    auto converted = ValueToJson(field, 1);
    if (!converted.ok()) return converted.status();
    out[key] = *std::move(converted);
  }
  return out;
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
