#include "client/cli/optimizer_params.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "elexirion/v1/common.pb.h"
#include "google/protobuf/descriptor.h"

namespace elexirion::cli {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;

const FieldDescriptor* FindField(const Descriptor* message, const std::string& name) {
  if (message == nullptr) return nullptr;
  if (const FieldDescriptor* f = message->FindFieldByName(name); f != nullptr) return f;
  return message->FindFieldByCamelcaseName(name);
}

// The enum value's proto name for `typed`: itself when it is one, else the single value whose
// name ends in "_" + TYPED (case-insensitive). Unknown or ambiguous names are left alone, so
// the proto parser reports them with the valid choices.
std::string ResolveEnumName(const EnumDescriptor* e, const std::string& typed) {
  const std::string upper = absl::AsciiStrToUpper(typed);
  if (e->FindValueByName(upper) != nullptr) return upper;
  std::string match;
  for (int i = 0; i < e->value_count(); ++i) {
    const std::string& name = e->value(i)->name();
    if (absl::EndsWith(name, absl::StrCat("_", upper))) {
      if (!match.empty()) return typed;
      match = name;
    }
  }
  return match.empty() ? typed : match;
}

}  // namespace

absl::StatusOr<nlohmann::json> OptimizerSpecJson(const std::string& optimizer,
                                                 const std::vector<std::string>& params) {
  const FieldDescriptor* spec_field = FindField(v1::OptimizerSpec::descriptor(), optimizer);
  const Descriptor* settings =
      spec_field != nullptr && spec_field->type() == FieldDescriptor::TYPE_MESSAGE
          ? spec_field->message_type()
          : nullptr;
  nlohmann::json object = nlohmann::json::object();
  for (const std::string& kv : params) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--param: expected key=value, got \"", kv, "\""));
    }
    const std::string key = kv.substr(0, eq);
    const std::string text = kv.substr(eq + 1);
    nlohmann::json value = nlohmann::json::parse(text, nullptr, false);
    if (value.is_discarded()) value = text;
    const FieldDescriptor* field = FindField(settings, key);
    if (field != nullptr && field->type() == FieldDescriptor::TYPE_ENUM && value.is_string()) {
      value = ResolveEnumName(field->enum_type(), value.get<std::string>());
    }
    object[key] = std::move(value);
  }
  return nlohmann::json{{optimizer, object}};
}

}  // namespace elexirion::cli
