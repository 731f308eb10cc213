#include "server/api/program_lookup.h"

#include "absl/strings/str_cat.h"
#include "server/api/validation.h"
#include "server/common/status_macros.h"

namespace elexirion::api {

absl::StatusOr<store::ProgramRecord> LookupProgram(store::Store& store,
                                                   const v1::ProgramRef& ref) {
  RETURN_IF_ERROR(ValidateResourceName("program.name", ref.name()));
  absl::StatusOr<store::ProgramRecord> record;
  switch (ref.selector_case()) {
    case v1::ProgramRef::kVersion:
      if (ref.version() <= 0) return absl::InvalidArgumentError("program.version: must be > 0");
      record = store.GetProgram(ref.name(), ref.version());
      break;
    case v1::ProgramRef::kLabel:
      if (ref.label() == "latest") {
        record = store.GetLatestProgram(ref.name());
      } else if (ref.label() == "production") {
        record = store.GetProductionProgram(ref.name());
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            "program.label: must be \"latest\" or \"production\", got \"", ref.label(), "\""));
      }
      break;
    default:
      record = store.GetProductionProgram(ref.name());
      if (absl::IsNotFound(record.status())) record = store.GetLatestProgram(ref.name());
  }
  if (absl::IsNotFound(record.status())) {
    return absl::NotFoundError(
        absl::StrCat("program: no such version of \"", ref.name(), "\""));
  }
  return record;
}

}  // namespace elexirion::api
