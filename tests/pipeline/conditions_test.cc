#include "server/pipeline/conditions.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace elexirion::pipeline {
namespace {

using json = nlohmann::json;

class ConditionsTest : public ::testing::Test {
 protected:
  ConditionsTest() {
    results_ = {
        {"analyze",
         {{"text", "found 2 bugs"},
          {"success", true},
          {"score", 7},
          {"confidence", 0.9},
          {"items", {"a", "b", "c"}},
          {"issues", {{{"severity", "high"}}, {{"severity", "low"}}}},
          {"scores", {3, 4, 5}},
          {"empty", ""}}},
        {"review", {{"success", false}}},
    };
  }

  bool Eval(const json& condition) {
    auto r = EvaluateCondition(condition, results_);
    EXPECT_TRUE(r.ok()) << r.status() << " for " << condition.dump();
    return r.ok() && *r;
  }

  json results_;
};

TEST_F(ConditionsTest, FieldTruthiness) {
  EXPECT_TRUE(Eval("analyze.success"));
  EXPECT_TRUE(Eval("analyze"));
  EXPECT_FALSE(Eval("review.success"));
  EXPECT_FALSE(Eval("analyze.missing"));
  EXPECT_FALSE(Eval("analyze.empty"));
  EXPECT_FALSE(Eval("nostep.success"));
  // Paths have no `steps.` prefix in pipeline_ex.
  EXPECT_FALSE(Eval("steps.analyze.success"));
}

TEST_F(ConditionsTest, Comparisons) {
  EXPECT_TRUE(Eval("analyze.score > 5"));
  EXPECT_FALSE(Eval("analyze.score < 5"));
  EXPECT_TRUE(Eval("analyze.score >= 7"));
  EXPECT_TRUE(Eval("analyze.score == 7"));
  EXPECT_TRUE(Eval("analyze.score != 8"));
  EXPECT_TRUE(Eval("analyze.text == 'found 2 bugs'"));
  EXPECT_TRUE(Eval("analyze.text contains 'bugs'"));
  EXPECT_TRUE(Eval("analyze.items contains 'b'"));
  EXPECT_TRUE(Eval("analyze.text matches 'found \\d bugs'"));
  // pipeline_ex quirk, kept: a '+' anywhere sends the string down the arithmetic path, where
  // the regex operand is evaluated as arithmetic and the match fails.
  EXPECT_FALSE(Eval("analyze.text matches 'found [0-9]+ bugs'"));
  EXPECT_FALSE(Eval("analyze.text matches '(unclosed'"));
  EXPECT_TRUE(Eval("analyze.score between 5 and 10"));
  EXPECT_TRUE(Eval("analyze.items.length >= 3"));
  EXPECT_FALSE(Eval("analyze.text > 5"));  // mixed types never compare
}

TEST_F(ConditionsTest, ArithmeticAndFunctions) {
  EXPECT_TRUE(Eval("analyze.score * analyze.confidence > 6"));
  EXPECT_TRUE(Eval("analyze.score + 1 == 8"));
  EXPECT_TRUE(Eval("analyze.score % 2 == 1"));
  EXPECT_TRUE(Eval("length(analyze.items) == 3"));
  EXPECT_TRUE(Eval("sum(analyze.scores) > 11"));
  EXPECT_TRUE(Eval("average(analyze.scores) == 4.0"));
  EXPECT_TRUE(Eval("max(analyze.scores) == 5"));
  EXPECT_TRUE(Eval("any(analyze.issues, 'severity == \"high\"')"));
  EXPECT_FALSE(Eval("all(analyze.issues, 'severity == \"high\"')"));
  EXPECT_TRUE(Eval("count(analyze.scores, '@ > 3') == 2"));
  EXPECT_TRUE(Eval("startsWith(analyze.text, 'found')"));
  EXPECT_TRUE(Eval("isEmpty(analyze.empty)"));
  EXPECT_TRUE(Eval("length(analyze.items) between 2 and 4"));
}

TEST_F(ConditionsTest, BooleanTrees) {
  EXPECT_TRUE(Eval(json{{"and", {"analyze.success", "analyze.score > 5"}}}));
  EXPECT_FALSE(Eval(json{{"and", {"analyze.success", "review.success"}}}));
  EXPECT_TRUE(Eval(json{{"or", {"review.success", "analyze.success"}}}));
  EXPECT_TRUE(Eval(json{{"not", "review.success"}}));
  EXPECT_TRUE(Eval(json::array({"analyze.success", json{{"not", "review.success"}}})));
  EXPECT_TRUE(Eval(json(true)));
  EXPECT_FALSE(Eval(json(false)));
}

TEST_F(ConditionsTest, Errors) {
  for (const json& bad : {json("unknownfn(analyze.score)"), json("now() > 1"), json{{"xor", {"a"}}},
                          json(42), json{{"and", "a"}}}) {
    auto r = EvaluateCondition(bad, results_);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad.dump();
  }
  // Very long arithmetic does not exhaust the stack.
  std::string long_expr = "1";
  for (int i = 0; i < 100000; ++i) long_expr += "+1";
  EXPECT_FALSE(EvaluateCondition(json(long_expr + " > 3"), results_).ok());
}

}  // namespace
}  // namespace elexirion::pipeline
