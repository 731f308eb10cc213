#include "server/jobs/work_estimate.h"

#include <algorithm>
#include <cstdlib>
#include <string>

namespace elexirion::jobs {
namespace {

// Below this fraction the rate is mostly noise (and a tiny fraction makes a huge ETA).
constexpr double kMinFractionForEta = 0.01;

}  // namespace

double WorkEstimate::Weight(int segment) const {
  const double validation = std::max(1, plan_.validation_size);
  switch (segment) {
    case kBaseline:
    case kFinal:
      return validation;
    case kOptimizer:
      return plan_.trials_total > 0 ? plan_.trials_total * validation
                                    : std::max(1, plan_.train_size);
    case kReference:
      return plan_.reference ? validation : 0;
    default:
      return 0;
  }
}

void WorkEstimate::Enter(Segment segment) {
  if (segment > segment_) segment_ = segment;
}

void WorkEstimate::OnPhase(std::string_view phase, std::string_view detail) {
  if (phase == "baseline") return;
  if (phase == "final") return Enter(kFinal);
  if (phase == "reference") return Enter(kReference);
  Enter(kOptimizer);
  if (phase == "search" && plan_.trials_total == 0) {
    // "N trials": strtol stops at the space.
    const int trials = static_cast<int>(std::strtol(std::string(detail).c_str(), nullptr, 10));
    if (trials > 0) plan_.trials_total = trials;
  }
}

void WorkEstimate::OnBootstrap(int done, int total, int accepted, int needed) {
  Enter(kOptimizer);
  // Trial-based optimizers bootstrap once per candidate: their trials say more.
  if (plan_.trials_total > 0 || segment_ != kOptimizer) return;
  double f = 0;
  if (total > 0) f = std::max(f, static_cast<double>(done) / total);
  if (needed > 0) f = std::max(f, static_cast<double>(accepted) / needed);
  optimizer_done_ = std::max(optimizer_done_, std::min(f, 1.0));
}

void WorkEstimate::OnTrialFinished(int trial) {
  Enter(kOptimizer);
  if (plan_.trials_total <= 0 || segment_ != kOptimizer) return;
  optimizer_done_ =
      std::max(optimizer_done_, std::min(1.0, static_cast<double>(trial) / plan_.trials_total));
}

double WorkEstimate::fraction() const {
  if (finished_) return 1;
  double total = 0, done = 0;
  for (int s = kBaseline; s < kDone; ++s) {
    const double w = Weight(s);
    total += w;
    if (s < segment_) {
      done += w;
    } else if (s == segment_ && s == kOptimizer) {
      done += w * optimizer_done_;
    }
  }
  return total > 0 ? std::min(1.0, done / total) : 0;
}

double WorkEstimate::EtaSeconds(absl::Duration elapsed) const {
  const double f = fraction();
  const double seconds = absl::ToDoubleSeconds(elapsed);
  if (f < kMinFractionForEta || f >= 1 || seconds <= 0) return 0;
  return seconds * (1 - f) / f;
}

}  // namespace elexirion::jobs
