// ParseLearningConfig: defaults, a full configuration, and every bad key named by its path.
#include "server/learning/policy.h"

#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "yaml-cpp/yaml.h"

namespace elexirion::learning {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

absl::StatusOr<LearningConfig> Parse(const std::string& yaml) {
  return ParseLearningConfig(YAML::Load(yaml)["learning"]);
}

TEST(PolicyTest, AbsentSectionIsAllDefaults) {
  auto config = Parse("other: 1\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->harvest_threshold, 8.0);
  EXPECT_EQ(config->tick, absl::Seconds(30));
  EXPECT_EQ(config->execution_retention, absl::Hours(720));
  EXPECT_EQ(config->time_zone, absl::LocalTimeZone());
  EXPECT_TRUE(config->pipelines.empty());

  // A pipeline without a policy is harvested with the defaults but never scheduled.
  PipelinePolicy policy = config->PolicyFor("code_analysis");
  EXPECT_EQ(policy.pipeline, "code_analysis");
  EXPECT_EQ(policy.program, "code_analysis");
  EXPECT_EQ(policy.dataset, "code_analysis");
  EXPECT_EQ(policy.harvest_threshold, 8.0);
  EXPECT_FALSE(policy.daily.enabled);
  EXPECT_FALSE(policy.weekly.enabled);
}

TEST(PolicyTest, ConfiguredPipelineGetsTheDesignDefaults) {
  auto config = Parse(R"(
learning:
  harvest_threshold: 7.5
  pipelines:
    code_analysis:
      metric: {exact_match: {field: answer}}
)");
  ASSERT_TRUE(config.ok()) << config.status();
  const PipelinePolicy policy = config->PolicyFor("code_analysis");
  EXPECT_EQ(policy.program, "code_analysis");
  EXPECT_EQ(policy.dataset, "code_analysis");
  EXPECT_EQ(policy.harvest_threshold, 7.5);
  EXPECT_EQ(policy.baseline_success_rate, 0.95);
  EXPECT_EQ(policy.min_new_examples, 10);
  EXPECT_EQ(policy.feedback_interval, absl::Minutes(10));
  ASSERT_TRUE(policy.metric.has_value());
  EXPECT_EQ(policy.metric->exact_match().field(), "answer");
  EXPECT_FALSE(policy.quality_metric.has_value());

  EXPECT_TRUE(policy.daily.enabled);
  EXPECT_EQ(policy.daily.hour, 2);
  EXPECT_EQ(policy.daily.minute, 0);
  ASSERT_TRUE(policy.daily.optimizer.has_bootstrap_few_shot());
  EXPECT_EQ(policy.daily.optimizer.bootstrap_few_shot().max_bootstrapped_demos(), 4);
  EXPECT_EQ(policy.daily.optimizer.bootstrap_few_shot().max_rounds(), 1);

  EXPECT_TRUE(policy.weekly.enabled);
  EXPECT_EQ(policy.weekly.day, absl::Weekday::sunday);
  EXPECT_EQ(policy.weekly.hour, 3);
  ASSERT_TRUE(policy.weekly.optimizer.has_miprov2());
}

TEST(PolicyTest, FullConfiguration) {
  auto config = Parse(R"(
learning:
  time_zone: America/New_York
  tick: 5s
  execution_retention: 48h
  max_record_bytes: 4096
  max_label_pipelines: 7
  pipelines:
    code_analysis:
      program: code_analysis_v2
      dataset: ca_data
      harvest_threshold: 9
      quality_metric: {token_f1: {field: summary}}
      metric: {contains: {field: answer, normalization: NORMALIZATION_TRIM}, pass_threshold: 0.5}
      baseline_success_rate: 0.9
      min_new_examples: 25
      feedback_interval: 5m
      daily: {at: "01:30", optimizer: {labeled_few_shot: {k: 3}, seed: 7}}
      weekly: {day: Wed, at: "23:59", optimizer: {miprov2: {auto: AUTO_HEAVY, minibatch: false}}}
      budget: {max_llm_calls: 200, max_usd: 1.5, max_duration: 3600s}
    refactoring:
      daily: {enabled: false}
      weekly: {enabled: false}
)");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->time_zone.name(), "America/New_York");
  EXPECT_EQ(config->tick, absl::Seconds(5));
  EXPECT_EQ(config->execution_retention, absl::Hours(48));
  EXPECT_EQ(config->max_record_bytes, 4096);
  EXPECT_EQ(config->max_label_pipelines, 7);
  ASSERT_EQ(config->pipelines.size(), 2u);

  const PipelinePolicy& p = config->pipelines.at("code_analysis");
  EXPECT_EQ(p.pipeline, "code_analysis");
  EXPECT_EQ(p.program, "code_analysis_v2");
  EXPECT_EQ(p.dataset, "ca_data");
  EXPECT_EQ(p.harvest_threshold, 9);
  ASSERT_TRUE(p.quality_metric.has_value());
  EXPECT_EQ(p.quality_metric->token_f1().field(), "summary");
  ASSERT_TRUE(p.metric.has_value());
  EXPECT_EQ(p.metric->contains().normalization(), v1::MetricSpec::NORMALIZATION_TRIM);
  EXPECT_EQ(p.metric->pass_threshold(), 0.5);
  EXPECT_EQ(p.baseline_success_rate, 0.9);
  EXPECT_EQ(p.min_new_examples, 25);
  EXPECT_EQ(p.feedback_interval, absl::Minutes(5));
  EXPECT_EQ(p.daily.hour, 1);
  EXPECT_EQ(p.daily.minute, 30);
  EXPECT_EQ(p.daily.optimizer.labeled_few_shot().k(), 3);
  EXPECT_EQ(p.daily.optimizer.seed(), 7);
  EXPECT_EQ(p.weekly.day, absl::Weekday::wednesday);
  EXPECT_EQ(p.weekly.hour, 23);
  EXPECT_EQ(p.weekly.minute, 59);
  EXPECT_EQ(p.weekly.optimizer.miprov2().auto_(), v1::OptimizerSpec::MiproV2::AUTO_HEAVY);
  EXPECT_TRUE(p.weekly.optimizer.miprov2().has_minibatch());
  EXPECT_FALSE(p.weekly.optimizer.miprov2().minibatch());
  EXPECT_EQ(p.budget.max_llm_calls(), 200);
  EXPECT_EQ(p.budget.max_usd(), 1.5);
  EXPECT_EQ(p.budget.max_duration().seconds(), 3600);

  // Both schedules off: no metric needed.
  const PipelinePolicy& r = config->pipelines.at("refactoring");
  EXPECT_FALSE(r.daily.enabled);
  EXPECT_FALSE(r.weekly.enabled);
  EXPECT_FALSE(r.metric.has_value());
}

TEST(PolicyTest, GepaAndSimbaSchedules) {
  auto config = Parse(R"(
learning:
  pipelines:
    p:
      metric: {llm_judge: {rubric: "correct?"}}
      daily: {optimizer: {simba: {bsize: 16, max_demos: 0}}}
      weekly: {optimizer: {gepa: {auto: AUTO_LIGHT, use_merge: false, reflection_lm: {model: big}}}}
)");
  ASSERT_TRUE(config.ok()) << config.status();
  const PipelinePolicy& p = config->pipelines.at("p");
  ASSERT_TRUE(p.daily.optimizer.has_simba());
  EXPECT_EQ(p.daily.optimizer.simba().bsize(), 16);
  EXPECT_TRUE(p.daily.optimizer.simba().has_max_demos());
  ASSERT_TRUE(p.weekly.optimizer.has_gepa());
  EXPECT_EQ(p.weekly.optimizer.gepa().auto_(), v1::OptimizerSpec::Gepa::AUTO_LIGHT);
  EXPECT_TRUE(p.weekly.optimizer.gepa().has_use_merge());
  EXPECT_FALSE(p.weekly.optimizer.gepa().use_merge());
  EXPECT_EQ(p.weekly.optimizer.gepa().reflection_lm().model(), "big");
}

TEST(PolicyTest, QuotedScalarStaysAString) {
  auto config = Parse(R"(
learning:
  pipelines:
    p:
      metric: {exact_match: {field: "123"}}
)");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->pipelines.at("p").metric->exact_match().field(), "123");
}

struct BadCase {
  std::string yaml;
  // The error must start with this key path...
  std::string path;
  // ...and contain this.
  std::string detail;
};

class BadConfigTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadConfigTest, NamesTheKey) {
  auto config = Parse(GetParam().yaml);
  ASSERT_FALSE(config.ok()) << GetParam().yaml;
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(config.status().message()), StartsWith(GetParam().path + ": "));
  EXPECT_THAT(std::string(config.status().message()), HasSubstr(GetParam().detail));
}

// Each case is a minimal valid pipeline `p` with one thing wrong.
const char kMetric[] = "metric: {exact_match: {field: a}}";

std::string Pipeline(const std::string& extra) {
  return std::string("learning:\n  pipelines:\n    p: {") + kMetric + (extra.empty() ? "" : ", ") +
         extra + "}\n";
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadConfigTest,
    ::testing::Values(
        BadCase{"learning: [1]\n", "learning", "expected a map"},
        BadCase{"learning: {frobnicate: 1}\n", "learning.frobnicate", "unknown key"},
        BadCase{"learning: {harvest_threshold: 11}\n", "learning.harvest_threshold",
                "must be in [0, 10]"},
        BadCase{"learning: {harvest_threshold: high}\n", "learning.harvest_threshold",
                "expected a number"},
        BadCase{"learning: {time_zone: Mars/Olympus}\n", "learning.time_zone",
                "unknown time zone \"Mars/Olympus\""},
        BadCase{"learning: {tick: fast}\n", "learning.tick", "expected a duration"},
        BadCase{"learning: {tick: 0s}\n", "learning.tick", "must be at least 1s"},
        BadCase{"learning: {tick: 30}\n", "learning.tick", "expected a duration"},
        BadCase{"learning: {execution_retention: 1m}\n", "learning.execution_retention",
                "must be at least"},
        BadCase{"learning: {max_record_bytes: 10}\n", "learning.max_record_bytes", "must be in"},
        BadCase{"learning: {max_label_pipelines: 0}\n", "learning.max_label_pipelines",
                "must be in"},
        BadCase{"learning: {pipelines: [a]}\n", "learning.pipelines", "expected a map"},
        BadCase{"learning: {pipelines: {Code Analysis: {}}}\n", "learning.pipelines.Code Analysis",
                "must match [a-z0-9_-]{1,64}"},
        BadCase{"learning: {pipelines: {p: }}\n", "learning.pipelines.p", "expected a map"},
        BadCase{Pipeline("frobnicate: 1"), "learning.pipelines.p.frobnicate", "unknown key"},
        BadCase{Pipeline("program: Bad!"), "learning.pipelines.p.program", "must match"},
        BadCase{Pipeline("dataset: [x]"), "learning.pipelines.p.dataset", "expected a string"},
        BadCase{Pipeline("harvest_threshold: -1"), "learning.pipelines.p.harvest_threshold",
                "must be in [0, 10]"},
        BadCase{Pipeline("baseline_success_rate: 1.5"),
                "learning.pipelines.p.baseline_success_rate", "must be in [0, 1]"},
        BadCase{Pipeline("min_new_examples: -1"), "learning.pipelines.p.min_new_examples",
                "must be in"},
        BadCase{Pipeline("min_new_examples: 2.5"), "learning.pipelines.p.min_new_examples",
                "expected an integer"},
        BadCase{Pipeline("feedback_interval: 10"), "learning.pipelines.p.feedback_interval",
                "expected a duration"},
        BadCase{Pipeline("feedback_interval: 10s"), "learning.pipelines.p.feedback_interval",
                "must be at least 1m"},
        BadCase{"learning: {pipelines: {p: {}}}\n", "learning.pipelines.p.metric",
                "required when daily or weekly is enabled"},
        BadCase{"learning: {pipelines: {p: {daily: {enabled: false}}}}\n",
                "learning.pipelines.p.metric", "required"},
        BadCase{"learning: {pipelines: {p: {metric: {nonsense: 1}}}}\n",
                "learning.pipelines.p.metric", "nonsense"},
        BadCase{"learning: {pipelines: {p: {metric: 3}}}\n", "learning.pipelines.p.metric",
                "expected a map"},
        BadCase{Pipeline("quality_metric: {exact_match: {field: [1]}}"),
                "learning.pipelines.p.quality_metric", ""},
        BadCase{Pipeline("daily: {at: \"25:00\"}"), "learning.pipelines.p.daily.at",
                "expected HH:MM (24 h), got \"25:00\""},
        BadCase{Pipeline("daily: {at: \"02:60\"}"), "learning.pipelines.p.daily.at",
                "expected HH:MM"},
        BadCase{Pipeline("daily: {at: 2am}"), "learning.pipelines.p.daily.at", "expected HH:MM"},
        BadCase{Pipeline("daily: {day: monday}"), "learning.pipelines.p.daily.day", "unknown key"},
        BadCase{Pipeline("daily: {enabled: maybe}"), "learning.pipelines.p.daily.enabled",
                "expected true or false"},
        BadCase{Pipeline("daily: {optimizer: {}}"), "learning.pipelines.p.daily.optimizer",
                "one of labeled_few_shot"},
        BadCase{Pipeline("daily: {optimizer: {bootstrap_few_shot: {max_rounds: lots}}}"),
                "learning.pipelines.p.daily.optimizer", ""},
        BadCase{Pipeline("daily: yes"), "learning.pipelines.p.daily", "expected a map"},
        BadCase{Pipeline("weekly: {day: funday}"), "learning.pipelines.p.weekly.day",
                "expected a weekday"},
        BadCase{Pipeline("weekly: {at: \"3pm\"}"), "learning.pipelines.p.weekly.at",
                "expected HH:MM"},
        BadCase{Pipeline("weekly: {optimizer: {simulated_annealing: {}}}"),
                "learning.pipelines.p.weekly.optimizer", "simulated_annealing"},
        BadCase{Pipeline("budget: {max_usd: lots}"), "learning.pipelines.p.budget", ""},
        BadCase{Pipeline("budget: {max_tokens: 5}"), "learning.pipelines.p.budget", "max_tokens"}));

}  // namespace
}  // namespace elexirion::learning
