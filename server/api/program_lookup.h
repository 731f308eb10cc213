// Resolving a ProgramRef (name plus version, "latest" or "production") in the registry.
#pragma once

#include "absl/status/statusor.h"
#include "elexirion/v1/program.pb.h"
#include "server/store/store.h"

namespace elexirion::api {

// No selector: the production version, else the latest. INVALID_ARGUMENT naming the field
// for a bad reference, NOT_FOUND when no such version exists.
absl::StatusOr<store::ProgramRecord> LookupProgram(store::Store& store, const v1::ProgramRef& ref);

}  // namespace elexirion::api
