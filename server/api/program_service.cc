#include "absl/strings/str_cat.h"
#include "server/api/services.h"
#include "server/common/status_macros.h"
#include "server/jobs/worker_pool.h"
#include "server/store/store.h"

namespace elexirion::api {
namespace {

absl::Status RequireName(const std::string& field, const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  if (name.size() > 128) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": longer than 128 characters"));
  }
  return absl::OkStatus();
}

absl::StatusOr<store::ProgramRecord> Lookup(store::Store& store, const v1::ProgramRef& ref) {
  RETURN_IF_ERROR(RequireName("program.name", ref.name()));
  switch (ref.selector_case()) {
    case v1::ProgramRef::kVersion:
      if (ref.version() <= 0) return absl::InvalidArgumentError("program.version: must be > 0");
      return store.GetProgram(ref.name(), ref.version());
    case v1::ProgramRef::kLabel:
      if (ref.label() == "latest") return store.GetLatestProgram(ref.name());
      if (ref.label() == "production") return store.GetProductionProgram(ref.name());
      return absl::InvalidArgumentError(absl::StrCat(
          "program.label: must be \"latest\" or \"production\", got \"", ref.label(), "\""));
    default: {
      auto production = store.GetProductionProgram(ref.name());
      if (absl::IsNotFound(production.status())) return store.GetLatestProgram(ref.name());
      return production;
    }
  }
}

}  // namespace

ServerUnaryReactor* ProgramServiceImpl::GetProgram(CallbackServerContext* ctx,
                                                   const v1::GetProgramRequest* request,
                                                   v1::Program* response) {
  return RunUnary(ctx, api_, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(store::ProgramRecord record, Lookup(*api_.store, request->program()));
    *response = jobs::ProgramProto(record);
    return absl::OkStatus();
  });
}

ServerUnaryReactor* ProgramServiceImpl::ListPrograms(CallbackServerContext* ctx,
                                                     const v1::ListProgramsRequest* request,
                                                     v1::ListProgramsResponse* response) {
  return RunUnary(ctx, api_, [&]() -> absl::Status {
    if (request->page_size() < 0 || request->page_size() > store::kMaxPageSize) {
      return absl::InvalidArgumentError(
          absl::StrCat("page_size: must be in 0..", store::kMaxPageSize));
    }
    ASSIGN_OR_RETURN(store::ProgramPage page,
                     api_.store->ListPrograms(request->name(), request->page_size(),
                                              request->page_token()));
    for (const auto& record : page.programs) {
      v1::Program* program = response->add_programs();
      *program = jobs::ProgramProto(record);
      // Listings stay small: the full program comes from GetProgram.
      program->clear_dspy_json();
      program->clear_optimized_yaml();
    }
    response->set_next_page_token(page.next_page_token);
    return absl::OkStatus();
  });
}

ServerUnaryReactor* ProgramServiceImpl::PromoteProgram(CallbackServerContext* ctx,
                                                       const v1::PromoteProgramRequest* request,
                                                       v1::Program* response) {
  return RunUnary(ctx, api_, [&]() -> absl::Status {
    RETURN_IF_ERROR(RequireName("name", request->name()));
    if (request->version() <= 0) return absl::InvalidArgumentError("version: must be > 0");
    ASSIGN_OR_RETURN(store::ProgramRecord record,
                     api_.store->PromoteProgram(request->name(), request->version()));
    *response = jobs::ProgramProto(record);
    return absl::OkStatus();
  });
}

}  // namespace elexirion::api
