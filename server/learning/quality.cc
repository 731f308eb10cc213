#include "server/learning/quality.h"

#include <string>

#include "google/protobuf/util/json_util.h"
#include "server/common/status_macros.h"
#include "server/optimizer/metrics.h"

namespace elexirion::learning {
namespace {

using nlohmann::json;

bool NonEmpty(const json& value) {
  // json::empty() is false for every string, "" included.
  if (value.is_string()) return !value.get_ref<const std::string&>().empty();
  if (value.is_array() || value.is_object()) return !value.empty();
  return !value.is_null();
}

// `key` at the top of `output`, else in the first step result that has it.
const json* Lookup(const json& output, const char* key) {
  if (!output.is_object()) return nullptr;
  if (auto it = output.find(key); it != output.end()) return &*it;
  for (const auto& [name, value] : output.items()) {
    if (!value.is_object()) continue;
    if (auto it = value.find(key); it != value.end()) return &*it;
  }
  return nullptr;
}

bool HasLlmJudge(const optimizer::MetricSpec& spec) {
  if (spec.kind == optimizer::MetricSpec::Kind::kLlmJudge) return true;
  for (const auto& part : spec.parts) {
    if (HasLlmJudge(part)) return true;
  }
  return false;
}

}  // namespace

double HeuristicQuality(bool success, const json& output) {
  const json* status = Lookup(output, "status");
  const bool partial = status != nullptr && status->is_string() && *status == "partial";
  if (success && !partial) {
    const json* findings = Lookup(output, "findings");
    return findings != nullptr && NonEmpty(*findings) ? 8.5 : 7.0;
  }
  return partial ? 5.0 : 2.0;
}

absl::StatusOr<std::unique_ptr<QualityScorer>> QualityScorer::Create(
    const std::optional<v1::MetricSpec>& metric) {
  if (!metric.has_value()) return std::unique_ptr<QualityScorer>(new QualityScorer(nullptr));
  std::string text;
  google::protobuf::util::JsonPrintOptions print;
  print.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(*metric, &text, print).ok()) {
    return absl::InvalidArgumentError("quality_metric: cannot be converted to JSON");
  }
  ASSIGN_OR_RETURN(
      optimizer::MetricSpec spec,
      optimizer::MetricSpecFromJson(nlohmann::ordered_json::parse(text), "quality_metric"));
  if (HasLlmJudge(spec)) {
    return absl::InvalidArgumentError(
        "quality_metric: llm_judge is not allowed here (ingestion never waits on a model); "
        "report quality_score from the runtime or use a metric that needs no LLM");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<optimizer::Metric> created, optimizer::CreateMetric(spec));
  return std::unique_ptr<QualityScorer>(new QualityScorer(std::move(created)));
}

QualityScorer::QualityScorer(std::unique_ptr<optimizer::Metric> metric)
    : metric_(std::move(metric)) {}
QualityScorer::~QualityScorer() = default;

double QualityScorer::Score(bool success, const json& input, const json& output,
                            const json& metadata) const {
  if (metric_ == nullptr || !success || !output.is_object()) {
    return HeuristicQuality(success, output);
  }
  optimizer::Example example;
  example.input = nlohmann::ordered_json::parse(input.is_object() ? input.dump() : "{}");
  if (metadata.is_object() && metadata.contains("expected_output")) {
    example.expected_output = nlohmann::ordered_json::parse(metadata["expected_output"].dump());
  }
  optimizer::MetricContext context;
  auto value = metric_->Score(example, nlohmann::ordered_json::parse(output.dump()), context);
  if (!value.ok()) return HeuristicQuality(success, output);
  double score = value->score * 10.0;
  return score < 0 ? 0 : (score > 10 ? 10 : score);
}

}  // namespace elexirion::learning
