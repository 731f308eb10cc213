#include "server/metrics/registry.h"

namespace elexirion::metrics {

std::shared_ptr<prometheus::Registry> DefaultRegistry() {
  static auto* registry = new std::shared_ptr<prometheus::Registry>(
      std::make_shared<prometheus::Registry>());
  return *registry;
}

}  // namespace elexirion::metrics
