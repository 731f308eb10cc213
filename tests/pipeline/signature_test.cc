#include "server/pipeline/signature.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace elexirion::pipeline {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(SignatureTest, ParsesNamesAndTypes) {
  auto s = ParseSignature("code, analysis_type -> findings, recommendations, severity");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(s->InputNames(), ElementsAre("code", "analysis_type"));
  EXPECT_THAT(s->OutputNames(), ElementsAre("findings", "recommendations", "severity"));
  EXPECT_EQ(s->inputs[0].type, "str");
  EXPECT_FALSE(s->inputs[0].type_declared);
  EXPECT_EQ(s->instructions,
            "Given the fields `code`, `analysis_type`, produce the fields `findings`, "
            "`recommendations`, `severity`.");
  EXPECT_EQ(s->ToString(), "code, analysis_type -> findings, recommendations, severity");
}

TEST(SignatureTest, TypesMayHoldCommasAndBrackets) {
  auto s = ParseSignature("question, context: list[str] -> answer: dict[str, int], ok: bool");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->inputs.size(), 2u);
  EXPECT_EQ(s->inputs[1].type, "list[str]");
  EXPECT_TRUE(s->inputs[1].type_declared);
  ASSERT_EQ(s->outputs.size(), 2u);
  EXPECT_EQ(s->outputs[0].type, "dict[str, int]");
  EXPECT_EQ(s->ToString(), "question, context: list[str] -> answer: dict[str, int], ok: bool");
  auto literal = ParseSignature("x -> choice: Literal['a, b', 'c']");
  ASSERT_TRUE(literal.ok()) << literal.status();
  EXPECT_EQ(literal->outputs[0].type, "Literal['a, b', 'c']");
}

TEST(SignatureTest, DefaultSignature) {
  auto s = ParseSignature(kDefaultSignature);
  ASSERT_TRUE(s.ok());
  EXPECT_THAT(s->FieldNames(), ElementsAre("input_data", "pipeline_output"));
}

TEST(SignatureTest, CustomInstructions) {
  auto s = ParseSignature("a -> b", "Do the thing.");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->instructions, "Do the thing.");
}

TEST(SignatureTest, RejectsMalformed) {
  for (const char* bad : {"a b -> c", "a -> b -> c", "a, b", "-> b", "a ->", "a, , b -> c",
                          "a -> a", "a: -> b", "1a -> b", "a -> b: list[str", "a -> b)"}) {
    auto s = ParseSignature(bad);
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.status().message(), HasSubstr("signature \"")) << bad;
  }
}

}  // namespace
}  // namespace elexirion::pipeline
