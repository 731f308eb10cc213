// The quality score (0-10) of an execution the runtime reported without one.
//
// Default: the design document's calculate_quality_score heuristic, read from what the record
// carries (success flag and output):
//   success with a non-empty `findings` (list, object or text)  -> 8.5
//   success                                                      -> 7.0
//   output status "partial"                                      -> 5.0
//   anything else (a failure)                                    -> 2.0
// `findings` and `status` are looked up at the top of the output and one level down (the
// runtime reports results keyed by step name: {"analyze": {"findings": [...]}}).
//
// A pipeline policy may configure a metric instead (learning.pipelines.<p>.quality_metric):
// it scores the output as the prediction against the record's metadata.expected_output (when
// the runtime has one, e.g. from user feedback), and 0-1 becomes 0-10. Only metrics that need
// no LLM call run here: ingestion never waits on a model.
#pragma once

#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "elexirion/v1/common.pb.h"
#include "nlohmann/json.hpp"

namespace elexirion::optimizer {
class Metric;
}

namespace elexirion::learning {

double HeuristicQuality(bool success, const nlohmann::json& output);

// Thread safe (Score is const).
class QualityScorer {
 public:
  // The heuristic when `metric` is unset. INVALID_ARGUMENT for an invalid metric or one that
  // calls a model (llm_judge).
  static absl::StatusOr<std::unique_ptr<QualityScorer>> Create(
      const std::optional<v1::MetricSpec>& metric);
  ~QualityScorer();

  // 0-10. A metric error falls back to the heuristic (the record is still worth keeping).
  double Score(bool success, const nlohmann::json& input, const nlohmann::json& output,
               const nlohmann::json& metadata) const;

 private:
  explicit QualityScorer(std::unique_ptr<optimizer::Metric> metric);
  std::unique_ptr<optimizer::Metric> metric_;
};

}  // namespace elexirion::learning
