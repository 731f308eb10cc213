#include "server/api/proto_json.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "server/common/json_text.h"
#include "server/common/status_macros.h"

namespace elexirion::api {

namespace {

// Integral values within 2^53 become integers, as a client writing JSON text would have them.
bool IsIntegral(double n) { return std::fabs(n) < 9007199254740992.0 && n == std::trunc(n); }

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
      if (IsIntegral(n)) {
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

absl::Status AppendValueText(const google::protobuf::Value& value, int depth, std::string* out);

absl::Status AppendStructText(const google::protobuf::Struct& value, int depth, std::string* out) {
  // Keys in std::string order, as nlohmann::json's std::map keeps them.
  std::vector<const google::protobuf::Map<std::string, google::protobuf::Value>::value_type*>
      fields;
  fields.reserve(value.fields().size());
  for (const auto& field : value.fields()) fields.push_back(&field);
  std::sort(fields.begin(), fields.end(),
            [](const auto* a, const auto* b) { return a->first < b->first; });
  out->push_back('{');
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out->push_back(',');
    AppendJsonQuoted(fields[i]->first, out);
    out->push_back(':');
    RETURN_IF_ERROR(AppendValueText(fields[i]->second, depth + 1, out));
  }
  out->push_back('}');
  return absl::OkStatus();
}

absl::Status AppendValueText(const google::protobuf::Value& value, int depth, std::string* out) {
  if (depth > 100) return absl::InvalidArgumentError("nested deeper than 100 levels");
  switch (value.kind_case()) {
    case google::protobuf::Value::kNullValue:
    case google::protobuf::Value::KIND_NOT_SET:
      out->append("null");
      return absl::OkStatus();
    case google::protobuf::Value::kNumberValue:
      if (!AppendJsonNumber(value.number_value(), out)) {
        return absl::InvalidArgumentError("numbers must be finite");
      }
      return absl::OkStatus();
    case google::protobuf::Value::kStringValue:
      AppendJsonQuoted(value.string_value(), out);
      return absl::OkStatus();
    case google::protobuf::Value::kBoolValue:
      out->append(value.bool_value() ? "true" : "false");
      return absl::OkStatus();
    case google::protobuf::Value::kStructValue:
      return AppendStructText(value.struct_value(), depth, out);
    case google::protobuf::Value::kListValue: {
      out->push_back('[');
      bool first = true;
      for (const auto& item : value.list_value().values()) {
        if (!first) out->push_back(',');
        first = false;
        RETURN_IF_ERROR(AppendValueText(item, depth + 1, out));
      }
      out->push_back(']');
      return absl::OkStatus();
    }
  }
  out->append("null");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> StructToJsonText(const google::protobuf::Struct& value) {
  std::string out;
  out.reserve(256);
  RETURN_IF_ERROR(AppendStructText(value, 0, &out));
  return out;
}

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
