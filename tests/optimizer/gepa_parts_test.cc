// Unit tests of GEPA's and SIMBA's pure parts: Pareto fronts and parent selection, the auto
// budget, the reflection prompt and answer extraction, and metric feedback texts.
#include <map>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/optimizer/metrics.h"
#include "server/optimizer/optimizers.h"
#include "server/optimizer/pareto.h"
#include "server/optimizer/reflection.h"

namespace elexirion::optimizer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ParetoTest, FrontsHoldTheBestCandidatesPerInstance) {
  // Candidate 0 leads instance 0, 1 leads 1 and ties 2 with 2; 3 leads nothing.
  const std::vector<std::vector<double>> scores = {{1, 0, 0}, {0, 1, 1}, {0, 0, 1}, {0, 0, 0}};
  const auto fronts = ParetoFronts(scores);
  EXPECT_THAT(fronts, ElementsAre(ElementsAre(0), ElementsAre(1), ElementsAre(1, 2)));
  // 2 is dominated: its only front also holds 1.
  const std::vector<double> aggregate = {1.0 / 3, 2.0 / 3, 1.0 / 3, 0};
  EXPECT_THAT(RemoveDominated(fronts, aggregate),
              ElementsAre(ElementsAre(0), ElementsAre(1), ElementsAre(1)));
  EXPECT_EQ(ParetoFrontSize(scores, aggregate), 2u);
}

TEST(ParetoTest, SelectionIsSeededAndProportionalToInstancesLed) {
  const std::vector<std::vector<double>> scores = {{1, 0, 0, 0}, {0, 1, 1, 1}};
  const std::vector<double> aggregate = {0.25, 0.75};
  std::map<size_t, int> counts;
  PyRandom rng(0);
  for (int i = 0; i < 4000; ++i) ++counts[SelectParetoCandidate(scores, aggregate, rng)];
  EXPECT_NEAR(counts[1] / 4000.0, 0.75, 0.03);
  EXPECT_NEAR(counts[0] / 4000.0, 0.25, 0.03);
  PyRandom a(7);
  PyRandom b(7);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(SelectParetoCandidate(scores, aggregate, a),
              SelectParetoCandidate(scores, aggregate, b));
  }
}

TEST(PyRandomTest, WeightedChoiceFollowsTheWeights) {
  PyRandom rng(3);
  std::map<size_t, int> counts;
  for (int i = 0; i < 6000; ++i) ++counts[rng.WeightedChoiceIndex({1, 0, 2})];
  EXPECT_EQ(counts[1], 0);
  EXPECT_NEAR(counts[2] / 6000.0, 2.0 / 3, 0.03);
  // All-zero weights: uniform instead of Python's ValueError.
  for (int i = 0; i < 20; ++i) EXPECT_LT(rng.WeightedChoiceIndex({0, 0}), 2u);
}

TEST(GepaBudgetTest, AutoMatchesDspy) {
  // DSPy's documented figures for 2 predictors and 100 validation examples.
  EXPECT_EQ(GepaAutoBudget(GepaOptions::Auto::kLight, 2, 100), 1330);
  EXPECT_EQ(GepaAutoBudget(GepaOptions::Auto::kMedium, 2, 100), 1740);
  EXPECT_EQ(GepaAutoBudget(GepaOptions::Auto::kHeavy, 2, 100), 2045);
}

TEST(GepaOptionsTest, ProtoJsonNamesAndDefaults) {
  auto o = GepaOptionsFromJson(ojson{{"auto", "AUTO_MEDIUM"},
                                     {"component_selector", "COMPONENT_SELECTOR_ALL"},
                                     {"use_merge", false}});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->auto_mode, GepaOptions::Auto::kMedium);
  EXPECT_EQ(o->component_selector, GepaOptions::Components::kAll);
  EXPECT_FALSE(o->use_merge);
  EXPECT_EQ(o->reflection_minibatch_size, 3);
  EXPECT_TRUE(o->skip_perfect_score);
  EXPECT_EQ(o->max_merge_invocations, 5);
  auto s = SimbaOptionsFromJson(ojson{{"max_demos", 0}});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->max_demos, 0);  // rules only
  EXPECT_EQ(s->bsize, 32);
  EXPECT_EQ(OptimizerRegistry::Global().Canonical("GEPA"), "gepa");
}

TEST(ReflectionTest, PromptShowsInputsOutputsAndFeedback) {
  ReflectionRecord r;
  r.inputs = ojson{{"question", "What is 2 * 3?"}};
  r.outputs = ojson{{"answer", "7"}};
  r.feedback = "answer should be \"6\" but was \"7\"";
  const std::string prompt = RenderReflectionPrompt("Answer it.", {r, r});
  EXPECT_THAT(prompt, HasSubstr("```\nAnswer it.\n```"));
  EXPECT_THAT(prompt, HasSubstr("# Example 2\n## Inputs\n### question\nWhat is 2 * 3?"));
  EXPECT_THAT(prompt, HasSubstr("## Generated Outputs\n### answer\n7"));
  EXPECT_THAT(prompt, HasSubstr("## Feedback\nanswer should be \"6\" but was \"7\""));
}

TEST(ReflectionTest, ExtractsTheFencedInstruction) {
  EXPECT_EQ(ExtractInstruction("Sure:\n```text\nDo it well.\nTwice.\n```\nDone."),
            "Do it well.\nTwice.");
  EXPECT_EQ(ExtractInstruction("```\nPlain.\n```"), "Plain.");
  EXPECT_EQ(ExtractInstruction("  No fences here. "), "No fences here.");
}

TEST(MetricFeedbackTest, EveryKindSaysWhy) {
  Example e;
  e.input = ojson{{"question", "q"}};
  e.expected_output = ojson{{"answer", "42"}};
  auto score = [&](MetricSpec spec, const ojson& prediction) {
    auto m = CreateMetric(spec);
    EXPECT_TRUE(m.ok()) << m.status();
    auto v = (*m)->Score(e, prediction, MetricContext{});
    EXPECT_TRUE(v.ok()) << v.status();
    return *v;
  };
  MetricSpec exact;
  exact.field = "answer";
  EXPECT_EQ(score(exact, ojson{{"answer", "43"}}).feedback,
            "answer should be \"42\" but was \"43\"");
  EXPECT_THAT(score(exact, ojson{{"answer", "42"}}).feedback, HasSubstr("correct"));
  MetricSpec numeric = exact;
  numeric.kind = MetricSpec::Kind::kNumeric;
  EXPECT_THAT(score(numeric, ojson{{"answer", "about 40"}}).feedback, HasSubstr("but was 40"));
  MetricSpec contains = exact;
  contains.kind = MetricSpec::Kind::kContains;
  EXPECT_THAT(score(contains, ojson{{"answer", "no"}}).feedback, HasSubstr("should contain"));
  MetricSpec f1 = exact;
  f1.kind = MetricSpec::Kind::kTokenF1;
  EXPECT_THAT(score(f1, ojson{{"answer", "41"}}).feedback, HasSubstr("token F1 0.0"));
  MetricSpec regex = exact;
  regex.kind = MetricSpec::Kind::kRegex;
  regex.pattern = "^4";
  EXPECT_THAT(score(regex, ojson{{"answer", "x"}}).feedback, HasSubstr("should match /^4/"));
  MetricSpec fields;
  fields.kind = MetricSpec::Kind::kJsonFields;
  EXPECT_THAT(score(fields, ojson{{"answer", "7"}}).feedback,
              HasSubstr("answer should be 42 but was 7"));
  MetricSpec both;
  both.kind = MetricSpec::Kind::kComposite;
  both.parts = {exact, regex};
  EXPECT_THAT(score(both, ojson{{"answer", "x"}}).feedback, HasSubstr("; answer should match"));
}

}  // namespace
}  // namespace elexirion::optimizer
