#include "absl/strings/str_cat.h"
#include "server/api/program_lookup.h"
#include "server/api/services.h"
#include "server/api/validation.h"
#include "server/common/status_macros.h"
#include "server/jobs/worker_pool.h"
#include "server/store/store.h"

namespace elexirion::api {
ServerUnaryReactor* ProgramServiceImpl::GetProgram(CallbackServerContext* ctx,
                                                   const v1::GetProgramRequest* request,
                                                   v1::Program* response) {
  return RunUnary(ctx, api_, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(store::ProgramRecord record, LookupProgram(*api_.store, request->program()));
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
    RETURN_IF_ERROR(ValidateResourceName("name", request->name()));
    if (request->version() <= 0) return absl::InvalidArgumentError("version: must be > 0");
    ASSIGN_OR_RETURN(store::ProgramRecord record,
                     api_.store->PromoteProgram(request->name(), request->version()));
    *response = jobs::ProgramProto(record);
    return absl::OkStatus();
  });
}

}  // namespace elexirion::api
