// Facade over the gRPC-level Prometheus metrics. Handlers never touch metric objects.
// Thread safe.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace elexirion::metrics {

// Registers the RPC, build-info and process-start families. Idempotent; call at start-up.
void InitRpcMetrics(absl::string_view version);

// Counts one finished RPC. `method` is the full gRPC method ("/elexirion.v1.X/Y"); methods
// outside our services are recorded as "other" to keep the label bounded.
void RecordRpc(absl::string_view method, int grpc_code, double seconds);

// Current number of RPCs being handled.
void SetInflightRpcs(int64_t n);

}  // namespace elexirion::metrics
