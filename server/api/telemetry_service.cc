#include "server/api/services.h"

namespace elexirion::api {
namespace {
constexpr char kUntil[] = "the runtime feedback loop";
}  // namespace

ServerUnaryReactor* TelemetryServiceImpl::RecordExecution(CallbackServerContext* ctx,
                                                          const v1::RecordExecutionRequest*,
                                                          v1::RecordExecutionResponse*) {
  return Unimplemented(ctx, api_, "RecordExecution", kUntil);
}
ServerUnaryReactor* TelemetryServiceImpl::RecordExecutions(CallbackServerContext* ctx,
                                                           const v1::RecordExecutionsRequest*,
                                                           v1::RecordExecutionsResponse*) {
  return Unimplemented(ctx, api_, "RecordExecutions", kUntil);
}
grpc::ServerReadReactor<v1::ExecutionRecord>* TelemetryServiceImpl::StreamExecutions(
    CallbackServerContext* ctx, v1::RecordExecutionsResponse*) {
  absl::Status auth = api_.auth->Authorize(*ctx);
  if (!auth.ok()) return new FinishedReader<v1::ExecutionRecord>(ToGrpcStatus(auth));
  return new FinishedReader<v1::ExecutionRecord>(grpc::Status(
      grpc::StatusCode::UNIMPLEMENTED,
      "StreamExecutions is not implemented yet (arrives with the runtime feedback loop)"));
}
ServerUnaryReactor* TelemetryServiceImpl::GetUsageStats(CallbackServerContext* ctx,
                                                        const v1::GetUsageStatsRequest*,
                                                        v1::UsageStats*) {
  return Unimplemented(ctx, api_, "GetUsageStats", kUntil);
}

}  // namespace elexirion::api
