#include "client/cli/command.h"

#include <algorithm>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"

namespace elexirion::cli {
namespace {

constexpr char kUsagePayload[] = "elexirion.cli/usage";

}  // namespace

absl::Status UsageError(absl::string_view message) {
  absl::Status status = absl::InvalidArgumentError(message);
  status.SetPayload(kUsagePayload, absl::Cord("1"));
  return status;
}

bool IsUsageError(const absl::Status& status) {
  return status.GetPayload(kUsagePayload).has_value();
}

std::string ToJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

CommandArgs::CommandArgs(const std::vector<std::string>& words) {
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (w == "-f") {
      if (i + 1 < words.size()) {
        options_.emplace_back("f", words[++i]);
      } else {
        missing_value_ = w;
      }
    } else if (w.rfind("--", 0) == 0) {
      size_t eq = w.find('=');
      if (eq != std::string::npos) {
        options_.emplace_back(w.substr(2, eq - 2), w.substr(eq + 1));
      } else if (IsSwitch(w.substr(2))) {
        options_.emplace_back(w.substr(2), "true");
      } else if (i + 1 < words.size()) {
        options_.emplace_back(w.substr(2), words[++i]);
      } else {
        options_.emplace_back(w.substr(2), "");
        missing_value_ = w;
      }
    } else {
      positional_.push_back(w);
    }
  }
}

bool CommandArgs::IsSwitch(const std::string& name) {
  return name == "follow" || name == "yaml" || name == "dspy" || name == "prompts" ||
         name == "no-cache" || name == "force";
}

bool CommandArgs::Has(const std::string& name) const {
  auto values = All(name);
  return !values.empty() && values.back() != "false";
}

std::vector<std::string> CommandArgs::All(const std::string& name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : options_) {
    if (k == name) out.push_back(v);
  }
  return out;
}

std::string CommandArgs::Get(const std::string& name, const std::string& fallback) const {
  auto all = All(name);
  return all.empty() ? fallback : all.back();
}

absl::Status CommandArgs::Check(const std::vector<std::string>& known) const {
  if (!missing_value_.empty()) {
    return UsageError(absl::StrCat(missing_value_, ": missing value"));
  }
  for (const auto& [k, v] : options_) {
    if (std::find(known.begin(), known.end(), k) == known.end()) {
      return UsageError(absl::StrCat("--", k, ": unknown option"));
    }
  }
  return absl::OkStatus();
}

}  // namespace elexirion::cli
