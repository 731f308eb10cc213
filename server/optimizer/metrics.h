// Metrics built from a MetricSpec (the plain-struct mirror of elexirion.v1.MetricSpec).
//
// Every metric returns a MetricValue: `score` in [0, 1] (what Evaluate sums, as DSPy sums a
// metric's float or bool) and `passed`, the strict bool DSPy metrics return when `trace` is
// not None, i.e. while an optimizer bootstraps demos. passed = score >= pass_threshold
// (spec.pass_threshold, default 1.0: for the 0/1 metrics "it matched").
//
// Kinds (the expected value is expected_output[field], or expected_output itself when it is
// not an object; a list of expected values matches when any does; the predicted value is the
// prediction's field, rendered as text for text metrics):
//  exact_match  normalized equality (DSPy's normalize_text by default)        -> 0/1
//  contains     the normalized prediction contains the normalized expectation -> 0/1
//  token_f1     DSPy's f1_score over normalized whitespace tokens (max over expected values)
//  json_fields  subset equality of the listed fields (all expected fields when none are
//               listed), each weighted (default 1); a field missing from the prediction is
//               looked up in a JSON object held by a text output field  -> weighted fraction
//  regex        RE2 partial match of the prediction field                  -> 0/1
//  numeric      the first number in the prediction field vs the expected number, within
//               max(abs_tolerance, rel_tolerance * |expected|)              -> 0/1
//  llm_judge    a judge model (DSPy Predict call through llm::LlmClient) scores the output
//               0-10 per criterion (one "score" when no criteria are given) with reasoning;
//               the answer is parsed robustly (ChatAdapter, JSON, then "score: 8/10"-style
//               text); passes when every criterion scores >= 7.0 (LlmJudge.pass_threshold),
//               like the design document's CodeAnalysisEvaluator and RefactoringEvaluator
//                                                                           -> 0/1
//  composite    all (every part passed), any (some part passed), weighted_mean of scores
//
// Feedback (DSPy's Prediction(score=..., feedback=...), which GEPA reflects on and SIMBA shows
// as reward info): every kind also returns a short text saying why it scored as it did, e.g.
// exact_match 'answer should be "42" but was "43"', numeric 'answer should be "42" but was 43',
// json_fields 'mismatched fields: severity should be high but was low', llm_judge
// 'score=3: <the judge's reasoning>', composite the parts' texts joined with "; ".
//
// Thread safety: Score() is const and may run concurrently.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "server/common/cancellation.h"
#include "server/llm/llm_client.h"
#include "server/llm/usage.h"
#include "server/optimizer/example.h"
#include "server/optimizer/predict.h"

namespace elexirion::optimizer {

struct TraceStep;

enum class Normalization { kDspy, kNone, kTrim };

struct MetricSpec {
  enum class Kind {
    kExactMatch,
    kContains,
    kTokenF1,
    kJsonFields,
    kRegex,
    kNumeric,
    kLlmJudge,
    kComposite,
  };
  enum class CompositeMode { kWeightedMean, kAll, kAny };

  Kind kind = Kind::kExactMatch;
  // exact_match, contains, token_f1, regex, numeric.
  std::string field;
  Normalization normalization = Normalization::kDspy;
  // json_fields.
  std::vector<std::string> fields;
  std::map<std::string, double> weights;
  // regex.
  std::string pattern;
  // numeric.
  double abs_tolerance = 0;
  double rel_tolerance = 0;
  // llm_judge.
  LmSettings judge;
  std::string rubric;
  std::vector<std::string> criteria;
  double judge_pass_threshold = 7.0;  // on the 0-10 scale
  // composite.
  CompositeMode mode = CompositeMode::kWeightedMean;
  std::vector<MetricSpec> parts;
  std::vector<double> part_weights;
  // Score at or above which an example passes; unset: 1.0.
  std::optional<double> pass_threshold;
};

// The spec from JSON in the proto's JSON mapping, e.g.
//   {"exact_match": {"field": "answer", "normalization": "NORMALIZATION_DSPY"}, "pass_threshold":
//   1}
//   {"composite": {"mode": "MODE_ALL", "parts": [...], "weights": [...]}}
// INVALID_ARGUMENT naming the field.
absl::StatusOr<MetricSpec> MetricSpecFromJson(const nlohmann::ordered_json& json,
                                              const std::string& where = "metric");

// Output fields the spec reads (to check them against the program up front).
std::vector<std::string> MetricFields(const MetricSpec& spec);

struct MetricValue {
  double score = 0;
  bool passed = false;
  // Why it scored so: the judge's reasoning, or what was expected and what was output.
  std::string feedback;
};

struct MetricContext {
  // Non-null while bootstrapping (DSPy passes the trace then).
  const std::vector<TraceStep>* trace = nullptr;
  // Where a non-object expected_output belongs.
  std::string primary_output;
  // For judge calls.
  const CancellationToken* cancel = nullptr;
  llm::UsageAccount* account = nullptr;
  absl::Time deadline = absl::InfiniteFuture();
};

class Metric {
 public:
  virtual ~Metric() = default;
  // An error status is a metric failure (counted toward max_errors like a program error).
  virtual absl::StatusOr<MetricValue> Score(const Example& example,
                                            const nlohmann::ordered_json& prediction,
                                            const MetricContext& context) const = 0;
};

// INVALID_ARGUMENT for an incomplete spec (missing field, empty composite, bad regex, ...).
// `judge_client` is required for llm_judge metrics (not owned; thread safe).
absl::StatusOr<std::unique_ptr<Metric>> CreateMetric(const MetricSpec& spec,
                                                     llm::LlmClient* judge_client = nullptr);

// DSPy's f1_score / em_score over normalize_text (exposed for tests).
double TokenF1(const std::string& prediction, const std::string& ground_truth);

// Parses a judge's free-text answer: per-criterion scores (0-10) from JSON, "criterion: 8",
// "8/10" or a bare number. Empty when nothing is found.
std::map<std::string, double> ParseJudgeScores(const std::string& text,
                                               const std::vector<std::string>& criteria);

}  // namespace elexirion::optimizer
