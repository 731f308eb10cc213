#include "server/learning/policy.h"

#include <exception>
#include <regex>
#include <set>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"
#include "server/common/status_macros.h"

namespace elexirion::learning {
namespace {

absl::Status Bad(const std::string& path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

// What the user wrote, for error messages (bounded: a config value can be long).
std::string Quoted(const YAML::Node& node) {
  if (!node.IsScalar()) return node.IsMap() ? "a map" : (node.IsSequence() ? "a list" : "null");
  return absl::StrCat("\"", node.Scalar().substr(0, 80), "\"");
}

absl::Status RejectUnknownKeys(const YAML::Node& map, const std::string& path,
                               const std::set<std::string>& known) {
  for (const auto& entry : map) {
    const std::string key = entry.first.Scalar();
    if (known.count(key) == 0) {
      return Bad(path.empty() ? key : absl::StrCat(path, ".", key),
                 absl::StrCat("unknown key (known: ", absl::StrJoin(known, ", "), ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status ExpectMap(const YAML::Node& node, const std::string& path) {
  if (!node.IsMap()) return Bad(path, absl::StrCat("expected a map, got ", Quoted(node)));
  return absl::OkStatus();
}

absl::StatusOr<double> ParseDouble(const YAML::Node& node, const std::string& path, double lo,
                                   double hi) {
  double value = 0;
  if (!node.IsScalar() || !absl::SimpleAtod(node.Scalar(), &value)) {
    return Bad(path, absl::StrCat("expected a number, got ", Quoted(node)));
  }
  if (!(value >= lo && value <= hi)) {
    return Bad(path, absl::StrCat("must be in [", lo, ", ", hi, "], got ", node.Scalar()));
  }
  return value;
}

absl::StatusOr<int64_t> ParseInt(const YAML::Node& node, const std::string& path, int64_t lo,
                                 int64_t hi) {
  int64_t value = 0;
  if (!node.IsScalar() || !absl::SimpleAtoi(node.Scalar(), &value)) {
    return Bad(path, absl::StrCat("expected an integer, got ", Quoted(node)));
  }
  if (value < lo || value > hi) {
    return Bad(path, absl::StrCat("must be in [", lo, ", ", hi, "], got ", node.Scalar()));
  }
  return value;
}

absl::StatusOr<bool> ParseBool(const YAML::Node& node, const std::string& path) {
  bool value = false;
  if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) {
    return Bad(path, absl::StrCat("expected true or false, got ", Quoted(node)));
  }
  return value;
}

absl::StatusOr<std::string> ParseString(const YAML::Node& node, const std::string& path) {
  if (!node.IsScalar()) return Bad(path, absl::StrCat("expected a string, got ", Quoted(node)));
  return node.Scalar();
}

// At least `min`: a zero tick or interval would spin the scheduler.
absl::StatusOr<absl::Duration> ParseDurationAtLeast(const YAML::Node& node, const std::string& path,
                                                    absl::Duration min) {
  absl::Duration value;
  if (!node.IsScalar() || !absl::ParseDuration(node.Scalar(), &value)) {
    return Bad(path, absl::StrCat("expected a duration such as \"30s\", \"10m\" or \"720h\", got ",
                                  Quoted(node)));
  }
  if (value < min) {
    return Bad(path, absl::StrCat("must be at least ", absl::FormatDuration(min), ", got ",
                                  node.Scalar()));
  }
  return value;
}

// Same rule as the API's resource names (server/api/validation.h), which this module cannot
// depend on: learning sits below api.
absl::Status ValidateName(const std::string& path, const std::string& name) {
  static const std::regex kName("[a-z0-9_-]{1,64}");
  if (!std::regex_match(name, kName)) {
    return Bad(path, absl::StrCat("must match [a-z0-9_-]{1,64}, got \"", name.substr(0, 80), "\""));
  }
  return absl::OkStatus();
}

absl::Status ParseTimeOfDay(const YAML::Node& node, const std::string& path, SchedulePolicy* out) {
  static const std::regex kHhMm("([0-9]{1,2}):([0-9]{2})");
  std::smatch match;
  std::string text = node.IsScalar() ? node.Scalar() : "";
  int hour = -1;
  int minute = -1;
  if (std::regex_match(text, match, kHhMm)) {
    hour = std::stoi(match[1].str());
    minute = std::stoi(match[2].str());
  }
  if (hour < 0 || hour > 23 || minute < 0 || minute > 59) {
    return Bad(path, absl::StrCat("expected HH:MM (24 h), got ", Quoted(node)));
  }
  out->hour = hour;
  out->minute = minute;
  return absl::OkStatus();
}

absl::StatusOr<absl::Weekday> ParseWeekday(const YAML::Node& node, const std::string& path) {
  static const std::pair<const char*, absl::Weekday> kDays[] = {
      {"monday", absl::Weekday::monday},       {"tuesday", absl::Weekday::tuesday},
      {"wednesday", absl::Weekday::wednesday}, {"thursday", absl::Weekday::thursday},
      {"friday", absl::Weekday::friday},       {"saturday", absl::Weekday::saturday},
      {"sunday", absl::Weekday::sunday}};
  if (node.IsScalar()) {
    const std::string text = absl::AsciiStrToLower(node.Scalar());
    for (const auto& [name, day] : kDays) {
      const std::string full = name;
      if (text == full || text == full.substr(0, 3)) return day;
    }
  }
  return Bad(path, absl::StrCat("expected a weekday (monday ... sunday), got ", Quoted(node)));
}

// YAML has no types of its own; a plain scalar that reads as a bool or number becomes one, a
// quoted scalar stays a string (so `model: "123"` still reaches a string field).
nlohmann::json YamlToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json object = nlohmann::json::object();
      for (const auto& entry : node) object[entry.first.Scalar()] = YamlToJson(entry.second);
      return object;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json array = nlohmann::json::array();
      for (const auto& item : node) array.push_back(YamlToJson(item));
      return array;
    }
    case YAML::NodeType::Scalar: {
      const std::string& text = node.Scalar();
      if (node.Tag() == "!") return text;
      if (text == "true" || text == "false") return text == "true";
      if (text == "null" || text == "~") return nullptr;
      int64_t i = 0;
      if (absl::SimpleAtoi(text, &i)) return i;
      double d = 0;
      if (absl::SimpleAtod(text, &d)) return d;
      return text;
    }
    default:
      return nullptr;
  }
}

// A proto message written as a YAML map in the proto JSON mapping.
template <typename Message>
absl::Status ParseProtoMap(const YAML::Node& node, const std::string& path, Message* out) {
  RETURN_IF_ERROR(ExpectMap(node, path));
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  Message parsed;
  auto status =
      google::protobuf::util::JsonStringToMessage(YamlToJson(node).dump(), &parsed, options);
  if (!status.ok()) return Bad(path, status.message().ToString());
  *out = std::move(parsed);
  return absl::OkStatus();
}

absl::Status ParseOptimizer(const YAML::Node& node, const std::string& path,
                            v1::OptimizerSpec* out) {
  RETURN_IF_ERROR(ParseProtoMap(node, path, out));
  if (out->kind_case() == v1::OptimizerSpec::KIND_NOT_SET) {
    return Bad(path,
               "one of labeled_few_shot, bootstrap_few_shot, bootstrap_random_search, copro, "
               "miprov2, gepa, simba is required");
  }
  return absl::OkStatus();
}

absl::Status ParseSchedule(const YAML::Node& node, const std::string& path, bool weekly,
                           SchedulePolicy* out) {
  RETURN_IF_ERROR(ExpectMap(node, path));
  std::set<std::string> known = {"enabled", "at", "optimizer"};
  if (weekly) known.insert("day");
  RETURN_IF_ERROR(RejectUnknownKeys(node, path, known));
  if (node["enabled"]) {
    ASSIGN_OR_RETURN(out->enabled, ParseBool(node["enabled"], path + ".enabled"));
  }
  if (node["at"]) RETURN_IF_ERROR(ParseTimeOfDay(node["at"], path + ".at", out));
  if (weekly && node["day"]) {
    ASSIGN_OR_RETURN(out->day, ParseWeekday(node["day"], path + ".day"));
  }
  if (node["optimizer"]) {
    RETURN_IF_ERROR(ParseOptimizer(node["optimizer"], path + ".optimizer", &out->optimizer));
  }
  return absl::OkStatus();
}

// Light: a few bootstrapped demos in one round, cheap enough to run every night.
SchedulePolicy DefaultDaily() {
  SchedulePolicy daily;
  daily.hour = 2;
  daily.minute = 0;
  auto* bootstrap = daily.optimizer.mutable_bootstrap_few_shot();
  bootstrap->set_max_bootstrapped_demos(4);
  bootstrap->set_max_labeled_demos(8);
  bootstrap->set_max_rounds(1);
  return daily;
}

// Full: MIPROv2 searching instructions and demos together, once a week.
SchedulePolicy DefaultWeekly() {
  SchedulePolicy weekly;
  weekly.day = absl::Weekday::sunday;
  weekly.hour = 3;
  weekly.minute = 0;
  weekly.optimizer.mutable_miprov2()->set_auto_(v1::OptimizerSpec::MiproV2::AUTO_MEDIUM);
  return weekly;
}

PipelinePolicy DefaultPolicy(const std::string& pipeline, double harvest_threshold) {
  PipelinePolicy policy;
  policy.pipeline = pipeline;
  policy.program = pipeline;
  policy.dataset = pipeline;
  policy.harvest_threshold = harvest_threshold;
  policy.daily = DefaultDaily();
  policy.weekly = DefaultWeekly();
  return policy;
}

absl::StatusOr<PipelinePolicy> ParsePipeline(const std::string& name, const YAML::Node& node,
                                             const std::string& path, double harvest_threshold) {
  RETURN_IF_ERROR(ValidateName(path, name));
  PipelinePolicy policy = DefaultPolicy(name, harvest_threshold);
  if (node.IsNull()) return Bad(path, "expected a map, got null (write {} for all defaults)");
  RETURN_IF_ERROR(ExpectMap(node, path));
  RETURN_IF_ERROR(RejectUnknownKeys(node, path,
                                    {"program", "dataset", "harvest_threshold", "quality_metric",
                                     "metric", "baseline_success_rate", "min_new_examples",
                                     "feedback_interval", "daily", "weekly", "budget"}));
  if (node["program"]) {
    ASSIGN_OR_RETURN(policy.program, ParseString(node["program"], path + ".program"));
    RETURN_IF_ERROR(ValidateName(path + ".program", policy.program));
  }
  if (node["dataset"]) {
    ASSIGN_OR_RETURN(policy.dataset, ParseString(node["dataset"], path + ".dataset"));
    RETURN_IF_ERROR(ValidateName(path + ".dataset", policy.dataset));
  }
  if (node["harvest_threshold"]) {
    ASSIGN_OR_RETURN(policy.harvest_threshold,
                     ParseDouble(node["harvest_threshold"], path + ".harvest_threshold", 0, 10));
  }
  if (node["quality_metric"]) {
    v1::MetricSpec metric;
    RETURN_IF_ERROR(ParseProtoMap(node["quality_metric"], path + ".quality_metric", &metric));
    policy.quality_metric = std::move(metric);
  }
  if (node["metric"]) {
    v1::MetricSpec metric;
    RETURN_IF_ERROR(ParseProtoMap(node["metric"], path + ".metric", &metric));
    policy.metric = std::move(metric);
  }
  if (node["baseline_success_rate"]) {
    ASSIGN_OR_RETURN(
        policy.baseline_success_rate,
        ParseDouble(node["baseline_success_rate"], path + ".baseline_success_rate", 0, 1));
  }
  if (node["min_new_examples"]) {
    ASSIGN_OR_RETURN(
        policy.min_new_examples,
        ParseInt(node["min_new_examples"], path + ".min_new_examples", 0, 1'000'000'000));
  }
  if (node["feedback_interval"]) {
    ASSIGN_OR_RETURN(policy.feedback_interval,
                     ParseDurationAtLeast(node["feedback_interval"], path + ".feedback_interval",
                                          absl::Minutes(1)));
  }
  if (node["daily"]) {
    RETURN_IF_ERROR(ParseSchedule(node["daily"], path + ".daily", false, &policy.daily));
  }
  if (node["weekly"]) {
    RETURN_IF_ERROR(ParseSchedule(node["weekly"], path + ".weekly", true, &policy.weekly));
  }
  if (node["budget"]) {
    RETURN_IF_ERROR(ParseProtoMap(node["budget"], path + ".budget", &policy.budget));
  }
  // A scheduled run without a metric could only fail at 02:00; say so at start-up instead.
  if ((policy.daily.enabled || policy.weekly.enabled) && !policy.metric.has_value()) {
    return Bad(path + ".metric",
               "required when daily or weekly is enabled (or set daily.enabled and "
               "weekly.enabled to false)");
  }
  return policy;
}

absl::StatusOr<LearningConfig> ParseConfig(const YAML::Node& node) {
  LearningConfig config;
  if (!node || node.IsNull()) return config;
  const std::string root = "learning";
  RETURN_IF_ERROR(ExpectMap(node, root));
  RETURN_IF_ERROR(
      RejectUnknownKeys(node, root,
                        {"harvest_threshold", "time_zone", "tick", "execution_retention",
                         "max_record_bytes", "max_label_pipelines", "pipelines"}));
  if (node["harvest_threshold"]) {
    ASSIGN_OR_RETURN(config.harvest_threshold,
                     ParseDouble(node["harvest_threshold"], root + ".harvest_threshold", 0, 10));
  }
  if (node["time_zone"]) {
    ASSIGN_OR_RETURN(std::string zone, ParseString(node["time_zone"], root + ".time_zone"));
    if (zone == "localtime") {
      config.time_zone = absl::LocalTimeZone();
    } else if (!absl::LoadTimeZone(zone, &config.time_zone)) {
      return Bad(root + ".time_zone",
                 absl::StrCat("unknown time zone \"", zone.substr(0, 80),
                              "\" (use \"localtime\", \"UTC\" or an IANA name)"));
    }
  }
  if (node["tick"]) {
    ASSIGN_OR_RETURN(config.tick,
                     ParseDurationAtLeast(node["tick"], root + ".tick", absl::Seconds(1)));
  }
  if (node["execution_retention"]) {
    ASSIGN_OR_RETURN(config.execution_retention,
                     ParseDurationAtLeast(node["execution_retention"],
                                          root + ".execution_retention", absl::Hours(1)));
  }
  if (node["max_record_bytes"]) {
    ASSIGN_OR_RETURN(config.max_record_bytes, ParseInt(node["max_record_bytes"],
                                                       root + ".max_record_bytes", 1024, 64 << 20));
  }
  if (node["max_label_pipelines"]) {
    ASSIGN_OR_RETURN(int64_t max_labels, ParseInt(node["max_label_pipelines"],
                                                  root + ".max_label_pipelines", 1, 10000));
    config.max_label_pipelines = static_cast<int>(max_labels);
  }
  if (node["pipelines"]) {
    const YAML::Node& pipelines = node["pipelines"];
    const std::string path = root + ".pipelines";
    if (!pipelines.IsNull()) {
      RETURN_IF_ERROR(ExpectMap(pipelines, path));
      for (const auto& entry : pipelines) {
        const std::string name = entry.first.Scalar();
        ASSIGN_OR_RETURN(PipelinePolicy policy,
                         ParsePipeline(name, entry.second, absl::StrCat(path, ".", name),
                                       config.harvest_threshold));
        config.pipelines[name] = std::move(policy);
      }
    }
  }
  return config;
}

}  // namespace

PipelinePolicy LearningConfig::PolicyFor(const std::string& pipeline) const {
  auto it = pipelines.find(pipeline);
  if (it != pipelines.end()) return it->second;
  // Recorded and harvested, never scheduled: there is no metric to optimize with.
  PipelinePolicy policy = DefaultPolicy(pipeline, harvest_threshold);
  policy.daily.enabled = false;
  policy.weekly.enabled = false;
  return policy;
}

LearningConfig::HarvestRule LearningConfig::HarvestFor(const std::string& pipeline) const {
  auto it = pipelines.find(pipeline);
  if (it != pipelines.end()) return {it->second.harvest_threshold, it->second.dataset};
  // As PolicyFor's default policy: the global threshold, a dataset named like the pipeline.
  return {harvest_threshold, pipeline};
}

absl::StatusOr<LearningConfig> ParseLearningConfig(const YAML::Node& node) {
  // Only accessors above are used, but yaml-cpp may still throw on a malformed node tree.
  try {
    return ParseConfig(node);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("learning: ", e.what()));
  }
}

}  // namespace elexirion::learning
