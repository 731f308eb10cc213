// Server interceptor recording every RPC's method, status code and latency, including calls
// rejected before a handler ran (auth, validation, size limits).
#pragma once

#include "grpcpp/support/server_interceptor.h"

namespace elexirion::api {

class MetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;
};

}  // namespace elexirion::api
