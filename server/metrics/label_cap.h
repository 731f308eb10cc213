// Bounds a Prometheus label's values: the first `max` distinct values keep their own label,
// later ones share `overflow`, so callers reporting arbitrary names cannot grow the series
// count without limit. Thread safe.
#pragma once

#include <cstddef>
#include <set>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace elexirion::metrics {

class LabelCap {
 public:
  LabelCap(size_t max, std::string overflow) : max_(max), overflow_(std::move(overflow)) {}

  // `value` while it is (or can still become) one of the first `max`, else the overflow label.
  std::string Label(const std::string& value) {
    absl::MutexLock lock(&mu_);
    if (seen_.count(value) > 0) return value;
    if (seen_.size() >= max_) return overflow_;
    seen_.insert(value);
    return value;
  }

  // Applies to values not seen yet.
  void set_max(size_t max) {
    absl::MutexLock lock(&mu_);
    max_ = max;
  }

  const std::string& overflow() const { return overflow_; }

 private:
  absl::Mutex mu_;
  size_t max_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> seen_ ABSL_GUARDED_BY(mu_);
  const std::string overflow_;
};

}  // namespace elexirion::metrics
