#include "server/pipeline/elixir_format.h"

#include "gtest/gtest.h"

namespace elexirion::pipeline {
namespace {

using json = nlohmann::json;

TEST(ElixirFormatTest, FloatsLikeErlangFwriteG) {
  EXPECT_EQ(ElixirFloatToString(0.1), "0.1");
  EXPECT_EQ(ElixirFloatToString(0.001), "0.001");
  EXPECT_EQ(ElixirFloatToString(0.0015), "0.0015");
  EXPECT_EQ(ElixirFloatToString(0.0001), "1.0e-4");
  EXPECT_EQ(ElixirFloatToString(1.0e-5), "1.0e-5");
  EXPECT_EQ(ElixirFloatToString(1.5), "1.5");
  EXPECT_EQ(ElixirFloatToString(100.0), "100.0");
  EXPECT_EQ(ElixirFloatToString(150.0), "150.0");
  EXPECT_EQ(ElixirFloatToString(1234.0), "1234.0");
  EXPECT_EQ(ElixirFloatToString(1000.0), "1.0e3");
  EXPECT_EQ(ElixirFloatToString(1.0e6), "1.0e6");
  EXPECT_EQ(ElixirFloatToString(123450000.0), "1.2345e8");
  EXPECT_EQ(ElixirFloatToString(-2.5), "-2.5");
  EXPECT_EQ(ElixirFloatToString(0.0), "0.0");
  EXPECT_EQ(ElixirFloatToString(3.0e20), "3.0e20");
}

TEST(ElixirFormatTest, JasonPrettyMatchesPipelineExOutput) {
  const json result = {{"text", "line1\nline2 \"q\" \\ \t\x01"},
                       {"success", true},
                       {"cost", 0.001},
                       {"model", "haiku"},
                       {"tokens", {{"input", 10}, {"output", 3}}},
                       {"list", {1, "a", nullptr}},
                       {"empty_map", json::object()},
                       {"empty_list", json::array()}};
  EXPECT_EQ(JasonEncode(result, true),
            "{\n"
            "  \"cost\": 0.001,\n"
            "  \"empty_list\": [],\n"
            "  \"empty_map\": {},\n"
            "  \"list\": [\n"
            "    1,\n"
            "    \"a\",\n"
            "    null\n"
            "  ],\n"
            "  \"model\": \"haiku\",\n"
            "  \"success\": true,\n"
            "  \"text\": \"line1\\nline2 \\\"q\\\" \\\\ \\t\\u0001\",\n"
            "  \"tokens\": {\n"
            "    \"input\": 10,\n"
            "    \"output\": 3\n"
            "  }\n"
            "}");
  EXPECT_EQ(JasonEncode(json{{"b", 1}, {"a", "é/x"}}, false), "{\"a\":\"é/x\",\"b\":1}");
}

TEST(ElixirFormatTest, ToStringLikeElixir) {
  EXPECT_EQ(*ElixirToString(json()), "");
  EXPECT_EQ(*ElixirToString(json(true)), "true");
  EXPECT_EQ(*ElixirToString(json(42)), "42");
  EXPECT_EQ(*ElixirToString(json(2.0)), "2.0");
  EXPECT_EQ(*ElixirToString(json("x")), "x");
  EXPECT_EQ(*ElixirToString(json::array({"ab", "cd", 33})), "abcd!");
  EXPECT_FALSE(ElixirToString(json{{"a", 1}}).ok());
  EXPECT_FALSE(ElixirToString(json::array({json{{"a", 1}}})).ok());
}

TEST(ElixirFormatTest, ParseJsonSafelyRefusesDeepNesting) {
  EXPECT_TRUE(ParseJsonSafely("{\"a\": [1, {\"b\": 2}]}").has_value());
  EXPECT_FALSE(ParseJsonSafely(std::string(100000, '[') + std::string(100000, ']')).has_value());
  EXPECT_FALSE(ParseJsonSafely("not json").has_value());
  // Brackets inside strings do not count.
  EXPECT_TRUE(ParseJsonSafely("\"" + std::string(1000, '[') + "\"").has_value());
}

}  // namespace
}  // namespace elexirion::pipeline
