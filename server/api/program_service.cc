#include "server/api/services.h"

namespace elexirion::api {
namespace {
constexpr char kUntil[] = "durable optimization jobs";
}  // namespace

ServerUnaryReactor* ProgramServiceImpl::GetProgram(CallbackServerContext* ctx,
                                                   const v1::GetProgramRequest*, v1::Program*) {
  return Unimplemented(ctx, api_, "GetProgram", kUntil);
}
ServerUnaryReactor* ProgramServiceImpl::ListPrograms(CallbackServerContext* ctx,
                                                     const v1::ListProgramsRequest*,
                                                     v1::ListProgramsResponse*) {
  return Unimplemented(ctx, api_, "ListPrograms", kUntil);
}
ServerUnaryReactor* ProgramServiceImpl::PromoteProgram(CallbackServerContext* ctx,
                                                       const v1::PromoteProgramRequest*,
                                                       v1::Program*) {
  return Unimplemented(ctx, api_, "PromoteProgram", kUntil);
}

}  // namespace elexirion::api
