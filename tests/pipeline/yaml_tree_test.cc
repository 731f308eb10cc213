// Hostile YAML: every case must fail cleanly with INVALID_ARGUMENT and a position.
#include "server/pipeline/yaml_tree.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace elexirion::pipeline {
namespace {

using ::testing::HasSubstr;

// Parses and records how long the refusal took (printed, never asserted: see bench/).
absl::Status ParseTimed(const std::string& text, const YamlLimits& limits = {}) {
  const absl::Time start = absl::Now();
  absl::Status status = ParseYaml(text, limits).status();
  ::testing::Test::RecordProperty("parse_ms",
                                  std::to_string(absl::ToDoubleMilliseconds(absl::Now() - start)));
  return status;
}

std::string BillionLaughs() {
  std::string doc =
      "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
  char prev = 'a';
  for (char c = 'b'; c <= 'j'; ++c) {
    absl::StrAppend(&doc, std::string(1, c), ": &", std::string(1, c), " [");
    for (int i = 0; i < 9; ++i) absl::StrAppend(&doc, i ? "," : "", "*", std::string(1, prev));
    doc += "]\n";
    prev = c;
  }
  return doc;
}

TEST(YamlTreeTest, ParsesMapsListsAndTypedScalars) {
  auto root =
      ParseYaml("a: 1\nb: [x, 'y', 2.5, true, null, ~, 0x1F, \"007\"]\nc: {d: e}\nf: |\n  line\n");
  ASSERT_TRUE(root.ok()) << root.status();
  const nlohmann::ordered_json j = YamlToJson(**root);
  EXPECT_EQ(j.dump(),
            R"({"a":1,"b":["x","y",2.5,true,null,null,31,"007"],"c":{"d":"e"},"f":"line\n"})");
  EXPECT_EQ((*root)->Find("c")->location.line, 3);
}

TEST(YamlTreeTest, SyntaxErrorNamesLineAndColumn) {
  absl::Status s = ParseTimed("workflow:\n  name: x\n  steps: [a, b\n");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("line "));
  EXPECT_THAT(s.message(), HasSubstr("column "));
}

TEST(YamlTreeTest, AliasBombHitsNodeBudget) {
  absl::Status s = ParseTimed(BillionLaughs());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("node budget"));
  EXPECT_THAT(s.message(), HasSubstr("line "));
}

TEST(YamlTreeTest, AliasCycleIsRejected) {
  absl::Status s = ParseTimed("a: &x [1, *x]\n");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("alias cycle"));
  EXPECT_THAT(s.message(), HasSubstr("line 1, column 11"));
  // A map containing itself, too.
  EXPECT_THAT(ParseTimed("&m {self: *m}\n").message(), HasSubstr("alias cycle"));
}

TEST(YamlTreeTest, SharedAliasesAreChargedInFull) {
  YamlLimits limits;
  limits.max_nodes = 50;
  // 10 aliases of a 10-item list: 100+ nodes after expansion.
  std::string doc = "base: &b [1,2,3,4,5,6,7,8,9,10]\nuse: [";
  for (int i = 0; i < 10; ++i) absl::StrAppend(&doc, i ? "," : "", "*b");
  doc += "]\n";
  EXPECT_THAT(ParseTimed(doc, limits).message(), HasSubstr("node budget"));
  limits.max_nodes = 1000;
  EXPECT_TRUE(ParseYaml(doc, limits).ok());
}

TEST(YamlTreeTest, AliasOfLargeScalarHitsExpandedBytes) {
  YamlLimits limits;
  limits.max_expanded_bytes = 1 << 20;
  std::string doc = "big: &big \"" + std::string(100000, 'x') + "\"\nuse: [";
  for (int i = 0; i < 20; ++i) absl::StrAppend(&doc, i ? "," : "", "*big");
  doc += "]\n";
  EXPECT_THAT(ParseTimed(doc, limits).message(), HasSubstr("expanded size budget"));
}

TEST(YamlTreeTest, DeepFlowNestingIsRejected) {
  const std::string doc = std::string(10000, '[') + std::string(10000, ']');
  absl::Status s = ParseTimed(doc);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("depth limit"));
  std::string maps;
  for (int i = 0; i < 10000; ++i) maps += "{a: ";
  maps += "x" + std::string(10000, '}');
  EXPECT_THAT(ParseTimed(maps).message(), HasSubstr("depth limit"));
}

TEST(YamlTreeTest, DeepBlockNestingIsRejected) {
  std::string seq;
  for (int i = 0; i < 10000; ++i) seq += "- ";
  seq += "x\n";
  absl::Status s = ParseTimed(seq);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("depth limit"));

  std::string maps;
  for (int i = 0; i < 1000; ++i) absl::StrAppend(&maps, std::string(i, ' '), "k", i, ":\n");
  EXPECT_THAT(ParseTimed(maps).message(), HasSubstr("depth limit"));
}

TEST(YamlTreeTest, DepthLimitIsConfigurable) {
  YamlLimits limits;
  limits.max_depth = 3;
  EXPECT_TRUE(ParseYaml("a: [1]\n", limits).ok());
  EXPECT_THAT(ParseYaml("a: [[1]]\n", limits).status().message(), HasSubstr("depth limit"));
}

TEST(YamlTreeTest, OversizeInputIsRejectedBeforeParsing) {
  const std::string doc = "a: \"" + std::string((1 << 20) + 10, 'x') + "\"\n";
  absl::Status s = ParseTimed(doc);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("limit is 1048576"));
}

TEST(YamlTreeTest, ManyKeysStayWithinBudget) {
  std::string doc;
  for (int i = 0; i < 120000; ++i) absl::StrAppend(&doc, "k", i, ": 1\n");
  YamlLimits limits;
  limits.max_bytes = 4 << 20;
  EXPECT_THAT(ParseTimed(doc, limits).message(), HasSubstr("node budget"));
}

TEST(YamlTreeTest, ComplexAndDuplicateKeysAreRejected) {
  EXPECT_THAT(ParseTimed("? [a, b]\n: c\n").message(), HasSubstr("mapping keys must be scalars"));
  EXPECT_THAT(ParseTimed("a: 1\nb: 2\na: 3\n").message(),
              HasSubstr("line 3, column 1: duplicate mapping key \"a\""));
}

TEST(YamlTreeTest, InputAndScalarsMustBeUtf8) {
  EXPECT_THAT(ParseTimed("a: 1\nb: \"x\xff\"\n").message(),
              HasSubstr("line 2, column 6: pipeline YAML must be UTF-8"));
  EXPECT_EQ(ParseTimed("a: \"\\ud800\"\n").code(), absl::StatusCode::kInvalidArgument);
  auto ok = ParseYaml("a: \"\\xff \\u00e9 \\U0001F600\"\n");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*ok)->Find("a")->scalar, "\xc3\xbf \xc3\xa9 \xf0\x9f\x98\x80");
}

TEST(YamlTreeTest, PreScanRefusesBeforeYamlCppButNotValidText) {
  // Flow nesting is refused at the 65th bracket, without tokenizing the rest.
  const std::string brackets = std::string(1 << 19, '[');
  EXPECT_THAT(ParseTimed(brackets).message(), HasSubstr("line 1, column 65: document nesting"));
  // Brackets, colons and dashes inside block scalars, quotes and comments are text.
  std::string text = "a: |\n";
  for (int i = 0; i < 200; ++i) text += "  [[{ x: - y\n";
  text += "b: \"" + std::string(200, '[') + "\"\nc: '" + std::string(200, '{') + "' # [[[[\n";
  text += "# " + std::string(200, '[') + "\n";
  auto root = ParseYaml(text);
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ((*root)->Find("b")->scalar, std::string(200, '['));
  // A plain scalar of more than 64 KiB on one line is refused; quoted, it is fine.
  EXPECT_THAT(ParseTimed("a: " + std::string(70000, 'x') + "\n").message(),
              HasSubstr("plain scalar longer than 65536 bytes"));
  EXPECT_TRUE(ParseYaml("a: \"" + std::string(70000, 'x') + "\"\n").ok());
  // JSON (flow) documents on one long line are fine.
  std::string json = "{\"a\": [";
  for (int i = 0; i < 20000; ++i) json += "\"item\", ";
  json += "1]}";
  EXPECT_TRUE(ParseYaml(json).ok());
}

TEST(YamlTreeTest, EmptyDocumentIsNull) {
  auto root = ParseYaml("");
  ASSERT_TRUE(root.ok());
  EXPECT_TRUE((*root)->IsNull());
}

TEST(YamlTreeTest, GarbageNeverCrashes) {
  for (const char* doc :
       {"\x00\x01\x02", "]]]", "{a: [}", "&a", "*a", "!!binary |\n  ???", "a: !<tag> b",
        "---\n...\n---", "\t- x", "'unterminated", "a: *undefined"}) {
    (void)ParseYaml(doc);
  }
}

}  // namespace
}  // namespace elexirion::pipeline
