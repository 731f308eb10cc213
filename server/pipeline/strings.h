// Abseil 20220623 as packaged here has its own absl::string_view (not std::string_view):
// public headers take std::string_view; implementation files convert with Sv().
#pragma once

#include <string_view>

#include "absl/strings/string_view.h"

namespace elexirion::pipeline {

inline absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }
inline std::string_view StdSv(absl::string_view s) { return std::string_view(s.data(), s.size()); }

}  // namespace elexirion::pipeline
