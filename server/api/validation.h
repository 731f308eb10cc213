// Request-field checks shared by the services.
#pragma once

#include <regex>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace elexirion::api {

// Names of pipelines, programs and datasets: [a-z0-9_-]{1,64}. INVALID_ARGUMENT naming
// `field` otherwise.
inline absl::Status ValidateResourceName(const std::string& field, const std::string& name) {
  static const std::regex kName("[a-z0-9_-]{1,64}");
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  if (!std::regex_match(name, kName)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must match [a-z0-9_-]{1,64}, got \"", name.substr(0, 80), "\""));
  }
  return absl::OkStatus();
}

}  // namespace elexirion::api
