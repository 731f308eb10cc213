// The process-wide Prometheus registry that every module registers its metric families on
// (at start-up, through its own facade). Served on the HTTP port at /metrics.
#pragma once

#include <memory>

#include "prometheus/registry.h"

namespace elexirion::metrics {

std::shared_ptr<prometheus::Registry> DefaultRegistry();

// Label value for a model name outside `known` (bounded cardinality): "other".
inline constexpr char kOtherLabel[] = "other";

}  // namespace elexirion::metrics
