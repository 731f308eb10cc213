#include "server/optimizer/metrics.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "re2/re2.h"
#include "server/optimizer/adapter.h"
#include "server/optimizer/program_runner.h"
#include "server/optimizer/py_format.h"
#include "server/optimizer/text_util.h"

namespace elexirion::optimizer {
namespace {

using ojson = nlohmann::ordered_json;
using Kind = MetricSpec::Kind;

absl::Status Invalid(const std::string& where, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
}

std::string Text(const ojson& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  if (v.is_object() || v.is_array()) return PyJsonDumps(v);
  return PyStr(v);
}

std::string Normalize(const std::string& s, Normalization n) {
  switch (n) {
    case Normalization::kDspy:
      return NormalizeText(s);
    case Normalization::kTrim:
      return PyStrip(s);
    case Normalization::kNone:
      return s;
  }
  return s;
}

// The expected value(s) for a field: expected_output[field], or expected_output itself.
std::vector<ojson> ExpectedValues(const Example& example, const std::string& field) {
  ojson expected;
  if (example.expected_output.is_object()) {
    auto it = example.expected_output.find(field);
    if (it == example.expected_output.end()) return {};
    expected = *it;
  } else {
    expected = example.expected_output;
  }
  if (expected.is_null()) return {};
  if (expected.is_array()) {
    std::vector<ojson> out;
    for (const ojson& v : expected) out.push_back(v);
    return out;
  }
  return {expected};
}

std::optional<double> FirstNumber(const std::string& text) {
  static const LazyRE2 kNumber = {R"((-?\d+(?:,\d{3})*(?:\.\d+)?(?:[eE][-+]?\d+)?))"};
  std::string match;
  if (!RE2::PartialMatch(text, *kNumber, &match)) return std::nullopt;
  match.erase(std::remove(match.begin(), match.end(), ','), match.end());
  char* end = nullptr;
  const double v = std::strtod(match.c_str(), &end);
  if (end == match.c_str()) return std::nullopt;
  return v;
}

std::optional<double> NumberOf(const ojson& v) {
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) return FirstNumber(v.get<std::string>());
  return std::nullopt;
}

// Long outputs are clipped in feedback text: it is read by a reflection model, which needs the
// gist, not a whole document.
std::string Clip(const std::string& s) {
  constexpr size_t kMax = 300;
  if (s.size() <= kMax) return s;
  return absl::StrCat(s.substr(0, kMax), "...");
}

// "\"42\"" or "one of \"a\", \"b\"" for feedback.
std::string ExpectedText(const std::vector<ojson>& expected) {
  std::vector<std::string> quoted;
  for (const ojson& e : expected) quoted.push_back(absl::StrCat("\"", Clip(Text(e)), "\""));
  if (quoted.empty()) return "(no expected value)";
  if (quoted.size() == 1) return quoted[0];
  return absl::StrCat("one of ", absl::StrJoin(quoted, ", "));
}

MetricValue Bool(bool ok, double threshold, std::string feedback = "") {
  MetricValue v;
  v.score = ok ? 1.0 : 0.0;
  v.passed = v.score >= threshold;
  v.feedback = std::move(feedback);
  return v;
}

class FieldMetric : public Metric {
 public:
  explicit FieldMetric(MetricSpec spec) : spec_(std::move(spec)) {}

  absl::StatusOr<MetricValue> Score(const Example& example, const ojson& prediction,
                                    const MetricContext& context) const override {
    const double threshold = spec_.pass_threshold.value_or(1.0);
    (void)context;
    const std::vector<ojson> expected = ExpectedValues(example, spec_.field);
    auto it = prediction.find(spec_.field);
    if (it == prediction.end() || it->is_null()) {
      return Bool(false, threshold, absl::StrCat("prediction has no field ", spec_.field));
    }
    const ojson& predicted = *it;
    if (expected.empty() && spec_.kind != Kind::kRegex) {
      return Bool(false, threshold, absl::StrCat("example has no expected ", spec_.field));
    }
    const std::string got = Clip(Text(predicted));
    const std::string want = ExpectedText(expected);
    switch (spec_.kind) {
      case Kind::kExactMatch: {
        const std::string p = Normalize(Text(predicted), spec_.normalization);
        for (const ojson& e : expected) {
          if (Normalize(Text(e), spec_.normalization) == p) {
            return Bool(true, threshold, absl::StrCat(spec_.field, " is correct (", want, ")"));
          }
        }
        return Bool(false, threshold,
                    absl::StrCat(spec_.field, " should be ", want, " but was \"", got, "\""));
      }
      case Kind::kContains: {
        const std::string p = Normalize(Text(predicted), spec_.normalization);
        for (const ojson& e : expected) {
          if (absl::StrContains(p, Normalize(Text(e), spec_.normalization))) {
            return Bool(true, threshold, absl::StrCat(spec_.field, " contains ", want));
          }
        }
        return Bool(false, threshold,
                    absl::StrCat(spec_.field, " should contain ", want, " but was \"", got, "\""));
      }
      case Kind::kTokenF1: {
        double best = 0;
        for (const ojson& e : expected) best = std::max(best, TokenF1(Text(predicted), Text(e)));
        MetricValue v;
        v.score = best;
        v.passed = best >= threshold;
        v.feedback =
            absl::StrCat(spec_.field, " has token F1 ", PyFloatRepr(best), " against the expected ",
                         want, best < 1.0 ? absl::StrCat(" (output: \"", got, "\")") : "");
        return v;
      }
      case Kind::kRegex: {
        const bool ok = RE2::PartialMatch(Text(predicted), *regex_);
        return Bool(ok, threshold,
                    ok ? absl::StrCat(spec_.field, " matches /", spec_.pattern, "/")
                       : absl::StrCat(spec_.field, " should match /", spec_.pattern, "/ but was \"",
                                      got, "\""));
      }
      case Kind::kNumeric: {
        std::optional<double> p = NumberOf(predicted);
        if (!p.has_value()) {
          return Bool(false, threshold,
                      absl::StrCat(spec_.field, " should be the number ", want,
                                   " but holds no number: \"", got, "\""));
        }
        for (const ojson& e : expected) {
          std::optional<double> x = NumberOf(e);
          if (!x.has_value()) continue;
          const double tolerance =
              std::max(spec_.abs_tolerance, spec_.rel_tolerance * std::fabs(*x));
          if (std::fabs(*p - *x) <= tolerance) {
            return Bool(true, threshold, absl::StrCat(spec_.field, " is correct (", want, ")"));
          }
        }
        return Bool(false, threshold,
                    absl::StrCat(spec_.field, " should be ", want, " but was ", PyFloatRepr(*p)));
      }
      default:
        return absl::InternalError("not a field metric");
    }
  }

  absl::Status Init() {
    if (spec_.field.empty()) return Invalid("metric", "field is required");
    if (spec_.kind == Kind::kRegex) {
      regex_ = std::make_unique<RE2>(spec_.pattern, RE2::Quiet);
      if (spec_.pattern.empty() || !regex_->ok()) {
        return Invalid("metric.regex.pattern",
                       absl::StrCat("invalid RE2 pattern: ", regex_->error()));
      }
    }
    return absl::OkStatus();
  }

 private:
  MetricSpec spec_;
  std::unique_ptr<RE2> regex_;
};

bool SubsetEqual(const ojson& expected, const ojson& actual) {
  if (expected.is_object()) {
    if (!actual.is_object()) return false;
    for (auto it = expected.begin(); it != expected.end(); ++it) {
      auto a = actual.find(it.key());
      if (a == actual.end() || !SubsetEqual(it.value(), *a)) return false;
    }
    return true;
  }
  if (expected.is_array()) {
    if (!actual.is_array() || actual.size() != expected.size()) return false;
    for (size_t i = 0; i < expected.size(); ++i) {
      if (!SubsetEqual(expected[i], actual[i])) return false;
    }
    return true;
  }
  if (expected.is_number() && actual.is_number()) {
    return expected.get<double>() == actual.get<double>();
  }
  if (!expected.is_string() && actual.is_string()) {
    // "3" vs 3, "true" vs true: compare the decoded text.
    std::optional<ojson> decoded = LenientJsonLoads(actual.get<std::string>());
    return decoded.has_value() && SubsetEqual(expected, *decoded);
  }
  return expected == actual;
}

class JsonFieldsMetric : public Metric {
 public:
  explicit JsonFieldsMetric(MetricSpec spec) : spec_(std::move(spec)) {}

  absl::StatusOr<MetricValue> Score(const Example& example, const ojson& prediction,
                                    const MetricContext& context) const override {
    const double threshold = spec_.pass_threshold.value_or(1.0);
    const ojson expected = Labels(example, context.primary_output);
    std::vector<std::string> fields = spec_.fields;
    if (fields.empty()) {
      for (auto it = expected.begin(); it != expected.end(); ++it) fields.push_back(it.key());
    }
    // JSON objects held by text fields of the prediction (e.g. pipeline_output).
    std::vector<ojson> embedded;
    for (auto it = prediction.begin(); it != prediction.end(); ++it) {
      if (!it->is_string()) continue;
      std::optional<ojson> obj = LenientJsonLoads(it->get<std::string>());
      if (!obj.has_value() || !obj->is_object()) {
        if (std::optional<std::string> text = FirstJsonObject(it->get<std::string>())) {
          obj = LenientJsonLoads(*text);
        }
      }
      if (obj.has_value() && obj->is_object()) embedded.push_back(std::move(*obj));
    }
    double total = 0;
    double matched = 0;
    std::vector<std::string> misses;
    for (const std::string& f : fields) {
      auto e = expected.find(f);
      if (e == expected.end()) continue;
      auto w = spec_.weights.find(f);
      const double weight = w == spec_.weights.end() ? 1.0 : w->second;
      total += weight;
      const ojson* actual = nullptr;
      auto p = prediction.find(f);
      if (p != prediction.end()) actual = &*p;
      for (const ojson& obj : embedded) {
        if (actual != nullptr) break;
        auto in = obj.find(f);
        if (in != obj.end()) actual = &*in;
      }
      if (actual != nullptr && SubsetEqual(*e, *actual)) {
        matched += weight;
      } else {
        misses.push_back(absl::StrCat(f, " should be ", Clip(Text(*e)), " but was ",
                                      actual == nullptr ? "missing" : Clip(Text(*actual))));
      }
    }
    MetricValue v;
    v.score = total > 0 ? matched / total : 0;
    v.passed = total > 0 && v.score >= threshold;
    v.feedback = misses.empty() ? "every expected field matches"
                                : absl::StrCat("mismatched fields: ", absl::StrJoin(misses, "; "));
    if (total == 0) v.feedback = "no expected fields to compare";
    return v;
  }

 private:
  MetricSpec spec_;
};

std::string SanitizeName(const std::string& s) {
  std::string out;
  for (unsigned char c : s)
    out.push_back(std::isalnum(c) ? static_cast<char>(std::tolower(c)) : '_');
  if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0]))) out.insert(0, "c_");
  return out;
}

class JudgeMetric : public Metric {
 public:
  JudgeMetric(MetricSpec spec, llm::LlmClient* client) : spec_(std::move(spec)), client_(client) {
    for (const std::string& c : spec_.criteria) names_.push_back(SanitizeName(c));
    if (names_.empty()) names_.push_back("score");
    FieldType text;
    auto number = ParseFieldType("float");
    signature_.instructions =
        "You are a strict evaluator of the output of an AI pipeline. Judge the actual output "
        "against the rubric (and the expected output when one is given). Explain your judgement "
        "in the reasoning, then give each score as a number from 0 to 10, where 10 fully meets "
        "the rubric and 7 is the lowest acceptable quality.";
    signature_.inputs = {{"rubric", text, "The evaluation criteria."},
                         {"task_input", text, "The input the pipeline was given."},
                         {"expected_output", text, "A reference output, when available."},
                         {"actual_output", text, "The output to evaluate."}};
    signature_.outputs.push_back({"reasoning", text, ""});
    for (size_t i = 0; i < names_.size(); ++i) {
      const std::string desc = spec_.criteria.empty()
                                   ? "Overall score from 0 to 10."
                                   : absl::StrCat("Score from 0 to 10 for: ", spec_.criteria[i]);
      signature_.outputs.push_back({names_[i], *number, desc});
    }
  }

  absl::StatusOr<MetricValue> Score(const Example& example, const ojson& prediction,
                                    const MetricContext& context) const override {
    ojson inputs = ojson::object();
    inputs["rubric"] = spec_.rubric;
    inputs["task_input"] = PyJsonDumps(example.input, 2);
    const ojson labels = Labels(example, context.primary_output);
    if (!labels.empty()) inputs["expected_output"] = PyJsonDumps(labels, 2);
    inputs["actual_output"] = PyJsonDumps(prediction, 2);
    FormattedPrompt prompt = FormatPrompt(AdapterKind::kChat, signature_, {}, inputs);
    llm::LlmRequest request;
    request.provider = spec_.judge.provider;
    request.model = spec_.judge.model;
    request.temperature = spec_.judge.temperature;
    request.max_tokens = spec_.judge.max_tokens;
    request.system = std::move(prompt.system);
    request.messages = std::move(prompt.messages);
    llm::CallOptions options;
    options.cancel = context.cancel;
    options.account = context.account;
    options.deadline = context.deadline;
    absl::StatusOr<llm::LlmResponse> response = client_->Complete(request, options);
    if (!response.ok()) return response.status();
    std::map<std::string, double> scores;
    std::string reasoning;
    absl::StatusOr<ojson> parsed = ParseCompletion(AdapterKind::kChat, signature_, response->text);
    if (parsed.ok()) {
      for (const std::string& n : names_) scores[n] = parsed->at(n).get<double>();
      reasoning = Text(parsed->at("reasoning"));
    } else {
      scores = ParseJudgeScores(response->text, names_);
      reasoning = response->text;
    }
    MetricValue v;
    bool all = !names_.empty();
    std::vector<std::string> parts;
    for (const std::string& n : names_) {
      auto it = scores.find(n);
      if (it == scores.end()) {
        all = false;
        parts.push_back(absl::StrCat(n, "=?"));
        continue;
      }
      parts.push_back(absl::StrCat(n, "=", it->second));
      if (!(it->second >= spec_.judge_pass_threshold)) all = false;
    }
    v.score = all ? 1.0 : 0.0;
    v.passed = v.score >= spec_.pass_threshold.value_or(1.0);
    v.feedback = absl::StrCat(absl::StrJoin(parts, ", "), ": ", reasoning);
    return v;
  }

 private:
  MetricSpec spec_;
  llm::LlmClient* client_;
  std::vector<std::string> names_;
  AdapterSignature signature_;
};

class CompositeMetric : public Metric {
 public:
  CompositeMetric(MetricSpec spec, std::vector<std::unique_ptr<Metric>> parts)
      : spec_(std::move(spec)), parts_(std::move(parts)) {}

  absl::StatusOr<MetricValue> Score(const Example& example, const ojson& prediction,
                                    const MetricContext& context) const override {
    std::vector<MetricValue> values;
    for (const auto& part : parts_) {
      auto v = part->Score(example, prediction, context);
      if (!v.ok()) return v.status();
      values.push_back(std::move(*v));
    }
    MetricValue out;
    switch (spec_.mode) {
      case MetricSpec::CompositeMode::kAll: {
        bool all = true;
        for (const MetricValue& v : values) all = all && v.passed;
        out.score = all ? 1 : 0;
        break;
      }
      case MetricSpec::CompositeMode::kAny: {
        bool any = false;
        for (const MetricValue& v : values) any = any || v.passed;
        out.score = any ? 1 : 0;
        break;
      }
      case MetricSpec::CompositeMode::kWeightedMean: {
        double total = 0;
        double sum = 0;
        for (size_t i = 0; i < values.size(); ++i) {
          const double w = i < spec_.part_weights.size() ? spec_.part_weights[i] : 1.0;
          total += w;
          sum += w * values[i].score;
        }
        out.score = total > 0 ? sum / total : 0;
        break;
      }
    }
    out.passed = out.score >= spec_.pass_threshold.value_or(1.0);
    std::vector<std::string> feedback;
    for (const MetricValue& v : values) {
      if (!v.feedback.empty()) feedback.push_back(v.feedback);
    }
    out.feedback = absl::StrJoin(feedback, "; ");
    return out;
  }

 private:
  MetricSpec spec_;
  std::vector<std::unique_ptr<Metric>> parts_;
};

absl::StatusOr<std::unique_ptr<Metric>> Create(const MetricSpec& spec, llm::LlmClient* client,
                                               const std::string& where, int depth) {
  if (depth > 8) return Invalid(where, "composite metrics nest too deeply");
  switch (spec.kind) {
    case Kind::kExactMatch:
    case Kind::kContains:
    case Kind::kTokenF1:
    case Kind::kRegex:
    case Kind::kNumeric: {
      auto m = std::make_unique<FieldMetric>(spec);
      absl::Status s = m->Init();
      if (!s.ok()) return Invalid(where, std::string(s.message()));
      if (spec.abs_tolerance < 0 || spec.rel_tolerance < 0) {
        return Invalid(absl::StrCat(where, ".numeric"), "tolerances must be >= 0");
      }
      return m;
    }
    case Kind::kJsonFields:
      for (const auto& [field, weight] : spec.weights) {
        if (weight < 0)
          return Invalid(absl::StrCat(where, ".json_fields.weights.", field), "must be >= 0");
      }
      return std::make_unique<JsonFieldsMetric>(spec);
    case Kind::kLlmJudge:
      if (client == nullptr)
        return Invalid(absl::StrCat(where, ".llm_judge"), "needs an LLM client");
      if (spec.rubric.empty())
        return Invalid(absl::StrCat(where, ".llm_judge.rubric"), "is required");
      if (spec.judge_pass_threshold < 0 || spec.judge_pass_threshold > 10) {
        return Invalid(absl::StrCat(where, ".llm_judge.pass_threshold"), "must be within 0-10");
      }
      return std::make_unique<JudgeMetric>(spec, client);
    case Kind::kComposite: {
      if (spec.parts.empty())
        return Invalid(absl::StrCat(where, ".composite.parts"), "at least one part is required");
      if (!spec.part_weights.empty() && spec.part_weights.size() != spec.parts.size()) {
        return Invalid(absl::StrCat(where, ".composite.weights"), "must be parallel to parts");
      }
      std::vector<std::unique_ptr<Metric>> parts;
      for (size_t i = 0; i < spec.parts.size(); ++i) {
        auto part = Create(spec.parts[i], client, absl::StrCat(where, ".composite.parts[", i, "]"),
                           depth + 1);
        if (!part.ok()) return part.status();
        parts.push_back(std::move(*part));
      }
      return std::make_unique<CompositeMetric>(spec, std::move(parts));
    }
  }
  return Invalid(where, "unknown kind");
}

absl::StatusOr<Normalization> ParseNormalization(const ojson& v, const std::string& where) {
  if (v.is_null()) return Normalization::kDspy;
  const std::string s = v.is_string() ? v.get<std::string>() : "";
  if (s.empty() || s == "NORMALIZATION_UNSPECIFIED" || s == "NORMALIZATION_DSPY" || s == "dspy") {
    return Normalization::kDspy;
  }
  if (s == "NORMALIZATION_NONE" || s == "none") return Normalization::kNone;
  if (s == "NORMALIZATION_TRIM" || s == "trim") return Normalization::kTrim;
  return Invalid(where, absl::StrCat("unknown normalization \"", s, "\""));
}

absl::StatusOr<std::string> StringField(const ojson& obj, const char* key, const std::string& where,
                                        bool required) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) return Invalid(absl::StrCat(where, ".", key), "is required");
    return std::string();
  }
  if (!it->is_string()) return Invalid(absl::StrCat(where, ".", key), "must be a string");
  return it->get<std::string>();
}

absl::StatusOr<double> NumberField(const ojson& obj, const char* key, const std::string& where,
                                   double fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_number()) return Invalid(absl::StrCat(where, ".", key), "must be a number");
  return it->get<double>();
}

}  // namespace

double TokenF1(const std::string& prediction, const std::string& ground_truth) {
  std::vector<std::string> p;
  std::vector<std::string> g;
  for (absl::string_view t : absl::StrSplit(NormalizeText(prediction), ' ', absl::SkipEmpty()))
    p.emplace_back(t);
  for (absl::string_view t : absl::StrSplit(NormalizeText(ground_truth), ' ', absl::SkipEmpty()))
    g.emplace_back(t);
  if (p.empty() && g.empty()) return 1.0;
  std::map<std::string, int> counts;
  for (const std::string& t : g) ++counts[t];
  int same = 0;
  for (const std::string& t : p) {
    auto it = counts.find(t);
    if (it != counts.end() && it->second > 0) {
      --it->second;
      ++same;
    }
  }
  if (same == 0) return 0.0;
  const double precision = 1.0 * same / p.size();
  const double recall = 1.0 * same / g.size();
  return 2 * precision * recall / (precision + recall);
}

std::map<std::string, double> ParseJudgeScores(const std::string& text,
                                               const std::vector<std::string>& criteria) {
  std::map<std::string, double> out;
  auto in_range = [](double v) { return v >= 0 && v <= 10; };
  // 1. A JSON object with the criteria (or "<criterion>_score", or "score"/"rating").
  std::optional<ojson> obj;
  if (std::optional<std::string> raw = FirstJsonObject(text)) obj = LenientJsonLoads(*raw);
  if (obj.has_value() && obj->is_object()) {
    for (const std::string& c : criteria) {
      std::vector<std::string> keys = {c, absl::StrCat(c, "_score")};
      if (criteria.size() == 1) {
        for (const char* k : {"score", "quality_score", "rating", "overall"}) keys.push_back(k);
      }
      for (const std::string& key : keys) {
        if (out.count(c) != 0) break;
        for (auto it = obj->begin(); it != obj->end(); ++it) {
          if (absl::AsciiStrToLower(it.key()) != key) continue;
          std::optional<double> v = NumberOf(*it);
          if (v.has_value() && in_range(*v)) {
            out[c] = *v;
            break;
          }
        }
      }
    }
    if (out.size() == criteria.size()) return out;
  }
  // 2. "criterion ... 8" / "criterion: 8/10" in text.
  const std::string lower = absl::AsciiStrToLower(text);
  for (const std::string& c : criteria) {
    if (out.count(c) != 0) continue;
    std::string pattern =
        absl::StrCat(RE2::QuoteMeta(c), R"([^0-9\n]{0,30}?(\d+(?:\.\d+)?)(?:\s*/\s*10)?)");
    double v = 0;
    if (RE2::PartialMatch(lower, pattern, &v) && in_range(v)) out[c] = v;
  }
  // 3. One criterion: "8/10", else the first number within 0-10.
  if (criteria.size() == 1 && out.empty()) {
    double v = 0;
    if (RE2::PartialMatch(lower, R"((\d+(?:\.\d+)?)\s*/\s*10)", &v) && in_range(v)) {
      out[criteria[0]] = v;
    } else if (std::optional<double> first = FirstNumber(lower); first && in_range(*first)) {
      out[criteria[0]] = *first;
    }
  }
  return out;
}

std::vector<std::string> MetricFields(const MetricSpec& spec) {
  switch (spec.kind) {
    case Kind::kExactMatch:
    case Kind::kContains:
    case Kind::kTokenF1:
    case Kind::kRegex:
    case Kind::kNumeric:
      return {spec.field};
    case Kind::kComposite: {
      std::vector<std::string> out;
      for (const MetricSpec& part : spec.parts) {
        for (std::string& f : MetricFields(part)) out.push_back(std::move(f));
      }
      return out;
    }
    default:
      return {};
  }
}

absl::StatusOr<std::unique_ptr<Metric>> CreateMetric(const MetricSpec& spec,
                                                     llm::LlmClient* judge_client) {
  return Create(spec, judge_client, "metric", 0);
}

absl::StatusOr<MetricSpec> MetricSpecFromJson(const ojson& json, const std::string& where) {
  if (!json.is_object()) return Invalid(where, "must be an object");
  MetricSpec spec;
  int kinds = 0;
  for (auto it = json.begin(); it != json.end(); ++it) {
    const std::string& key = it.key();
    const std::string at = absl::StrCat(where, ".", key);
    if (key == "pass_threshold") {
      if (!it->is_number()) return Invalid(at, "must be a number");
      spec.pass_threshold = it->get<double>();
      continue;
    }
    if (!it->is_object()) return Invalid(at, "must be an object");
    const ojson& body = *it;
    ++kinds;
    if (key == "exact_match" || key == "contains" || key == "token_f1" || key == "regex" ||
        key == "numeric") {
      spec.kind = key == "exact_match" ? Kind::kExactMatch
                  : key == "contains"  ? Kind::kContains
                  : key == "token_f1"  ? Kind::kTokenF1
                  : key == "regex"     ? Kind::kRegex
                                       : Kind::kNumeric;
      auto field = StringField(body, "field", at, true);
      if (!field.ok()) return field.status();
      spec.field = *field;
      auto norm = ParseNormalization(body.value("normalization", ojson()),
                                     absl::StrCat(at, ".normalization"));
      if (!norm.ok()) return norm.status();
      spec.normalization = *norm;
      if (spec.kind == Kind::kRegex) {
        auto pattern = StringField(body, "pattern", at, true);
        if (!pattern.ok()) return pattern.status();
        spec.pattern = *pattern;
      }
      if (spec.kind == Kind::kNumeric) {
        auto a = NumberField(body, "abs_tolerance", at, 0);
        if (!a.ok()) return a.status();
        auto r = NumberField(body, "rel_tolerance", at, 0);
        if (!r.ok()) return r.status();
        spec.abs_tolerance = *a;
        spec.rel_tolerance = *r;
      }
    } else if (key == "json_fields") {
      spec.kind = Kind::kJsonFields;
      if (auto f = body.find("fields"); f != body.end()) {
        if (!f->is_array())
          return Invalid(absl::StrCat(at, ".fields"), "must be a list of strings");
        for (const ojson& name : *f) {
          if (!name.is_string())
            return Invalid(absl::StrCat(at, ".fields"), "must be a list of strings");
          spec.fields.push_back(name.get<std::string>());
        }
      }
      if (auto w = body.find("weights"); w != body.end()) {
        if (!w->is_object())
          return Invalid(absl::StrCat(at, ".weights"), "must be a map of numbers");
        for (auto e = w->begin(); e != w->end(); ++e) {
          if (!e->is_number())
            return Invalid(absl::StrCat(at, ".weights.", e.key()), "must be a number");
          spec.weights[e.key()] = e->get<double>();
        }
      }
    } else if (key == "llm_judge") {
      spec.kind = Kind::kLlmJudge;
      auto rubric = StringField(body, "rubric", at, true);
      if (!rubric.ok()) return rubric.status();
      spec.rubric = *rubric;
      if (auto c = body.find("criteria"); c != body.end()) {
        if (!c->is_array())
          return Invalid(absl::StrCat(at, ".criteria"), "must be a list of strings");
        for (const ojson& name : *c) {
          if (!name.is_string())
            return Invalid(absl::StrCat(at, ".criteria"), "must be a list of strings");
          spec.criteria.push_back(name.get<std::string>());
        }
      }
      auto threshold = NumberField(body, "pass_threshold", at, 7.0);
      if (!threshold.ok()) return threshold.status();
      spec.judge_pass_threshold = *threshold == 0 ? 7.0 : *threshold;
      if (auto judge = body.find("judge"); judge != body.end() && judge->is_object()) {
        spec.judge.provider = judge->value("provider", "");
        spec.judge.model = judge->value("model", "");
        if (judge->contains("temperature"))
          spec.judge.temperature = judge->at("temperature").get<double>();
        if (judge->contains("max_tokens"))
          spec.judge.max_tokens = judge->at("max_tokens").get<int>();
      }
    } else if (key == "composite") {
      spec.kind = Kind::kComposite;
      const std::string mode = body.value("mode", "");
      if (mode.empty() || mode == "MODE_UNSPECIFIED" || mode == "MODE_WEIGHTED_MEAN" ||
          mode == "weighted_mean") {
        spec.mode = MetricSpec::CompositeMode::kWeightedMean;
      } else if (mode == "MODE_ALL" || mode == "all") {
        spec.mode = MetricSpec::CompositeMode::kAll;
      } else if (mode == "MODE_ANY" || mode == "any") {
        spec.mode = MetricSpec::CompositeMode::kAny;
      } else {
        return Invalid(absl::StrCat(at, ".mode"), absl::StrCat("unknown mode \"", mode, "\""));
      }
      auto parts = body.find("parts");
      if (parts == body.end() || !parts->is_array() || parts->empty()) {
        return Invalid(absl::StrCat(at, ".parts"), "at least one part is required");
      }
      for (size_t i = 0; i < parts->size(); ++i) {
        auto part = MetricSpecFromJson((*parts)[i], absl::StrCat(at, ".parts[", i, "]"));
        if (!part.ok()) return part.status();
        spec.parts.push_back(std::move(*part));
      }
      if (auto w = body.find("weights"); w != body.end()) {
        if (!w->is_array())
          return Invalid(absl::StrCat(at, ".weights"), "must be a list of numbers");
        for (const ojson& x : *w) {
          if (!x.is_number())
            return Invalid(absl::StrCat(at, ".weights"), "must be a list of numbers");
          spec.part_weights.push_back(x.get<double>());
        }
      }
    } else {
      return Invalid(at, "unknown metric kind");
    }
  }
  if (kinds != 1) return Invalid(where, "exactly one metric kind must be set");
  return spec;
}

}  // namespace elexirion::optimizer
