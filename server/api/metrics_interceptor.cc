#include "server/api/metrics_interceptor.h"

#include <string>

#include "absl/time/clock.h"
#include "server/metrics/rpc_metrics.h"

namespace elexirion::api {
namespace {

class MetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit MetricsInterceptor(grpc::experimental::ServerRpcInfo* info)
      : method_(info->method() != nullptr ? info->method() : ""), start_(absl::Now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      metrics::RecordRpc(method_, static_cast<int>(methods->GetSendStatus().error_code()),
                         absl::ToDoubleSeconds(absl::Now() - start_));
    }
    methods->Proceed();
  }

 private:
  std::string method_;
  absl::Time start_;
};

}  // namespace

grpc::experimental::Interceptor* MetricsInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  if (info->type() != grpc::experimental::ServerRpcInfo::Type::UNARY) return nullptr;
  return new MetricsInterceptor(info);
}

void StreamRpcRecorder::Record() const {
  metrics::RecordRpc(method_, static_cast<int>(code_), absl::ToDoubleSeconds(absl::Now() - start_));
}

}  // namespace elexirion::api
