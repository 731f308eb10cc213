// Request-field checks shared by the services.
#pragma once

#include <algorithm>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace elexirion::api {

// Names of pipelines, programs and datasets: [a-z0-9_-]{1,64}. INVALID_ARGUMENT naming
// `field` otherwise.
inline absl::Status ValidateResourceName(const std::string& field, const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  // A character loop, not std::regex: this runs for every telemetry record.
  const bool valid =
      name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
      });
  if (!valid) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must match [a-z0-9_-]{1,64}, got \"", name.substr(0, 80), "\""));
  }
  return absl::OkStatus();
}

}  // namespace elexirion::api
