#include "server/api/services.h"

namespace elexirion::api {
namespace {
constexpr char kUntil[] = "the pipeline engine";
}  // namespace

ServerUnaryReactor* PipelineServiceImpl::RegisterPipeline(CallbackServerContext* ctx,
                                                          const v1::RegisterPipelineRequest*,
                                                          v1::Pipeline*) {
  return Unimplemented(ctx, api_, "RegisterPipeline", kUntil);
}
ServerUnaryReactor* PipelineServiceImpl::GetPipeline(CallbackServerContext* ctx,
                                                     const v1::GetPipelineRequest*,
                                                     v1::Pipeline*) {
  return Unimplemented(ctx, api_, "GetPipeline", kUntil);
}
ServerUnaryReactor* PipelineServiceImpl::ListPipelines(CallbackServerContext* ctx,
                                                       const v1::ListPipelinesRequest*,
                                                       v1::ListPipelinesResponse*) {
  return Unimplemented(ctx, api_, "ListPipelines", kUntil);
}
ServerUnaryReactor* PipelineServiceImpl::DeletePipeline(CallbackServerContext* ctx,
                                                        const v1::DeletePipelineRequest*,
                                                        v1::DeletePipelineResponse*) {
  return Unimplemented(ctx, api_, "DeletePipeline", kUntil);
}
ServerUnaryReactor* PipelineServiceImpl::ExecutePipeline(CallbackServerContext* ctx,
                                                         const v1::ExecutePipelineRequest*,
                                                         v1::ExecutePipelineResponse*) {
  return Unimplemented(ctx, api_, "ExecutePipeline", kUntil);
}

}  // namespace elexirion::api
