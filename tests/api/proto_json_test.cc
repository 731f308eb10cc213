// StructToJsonText writes exactly what the tree path (StructToJson, then dump()) writes: the
// stored execution JSON and the content hashes of harvested examples depend on it.
#include "server/api/proto_json.h"

#include <limits>
#include <random>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/api/random_struct.h"

namespace elexirion::api {
namespace {

google::protobuf::Struct FromJson(const std::string& text) {
  google::protobuf::Struct out;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(text, &out).ok()) << text;
  return out;
}

void ExpectSameAsTree(const google::protobuf::Struct& value) {
  auto tree = StructToJson(value);
  auto text = StructToJsonText(value);
  ASSERT_TRUE(tree.ok()) << tree.status();
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, tree->dump());
}

TEST(StructToJsonTextTest, MatchesTheTreeDump) {
  for (const char* json : {
           R"({})",
           R"({"b": 1, "a": 2, "B": 3, "_": 4, "aa": 5, "é": 6, "z": 7})",
           R"({"n": [1, -1, 0, 0.5, -2.25, 1e300, 1e-300, 0.1, 123456789012, 9007199254740993]})",
           R"({"s": "quote \" backslash \\ slash / tab \t nl \n cr \r bs \b ff \f"})",
           R"({"u": "caf\u00e9 \u65e5\u672c \ud83d\ude00 \u007f \u0001 \u001f"})",
           R"({"nested": {"list": [{"y": true, "x": false}, null, [], {}], "e": ""}})",
           R"({"code": "def f(x):\n    return eval(x)  # \"unsafe\"\n", "lang": "python"})",
       }) {
    SCOPED_TRACE(json);
    ExpectSameAsTree(FromJson(json));
  }
}

TEST(StructToJsonTextTest, MatchesTheTreeOnRandomValues) {
  std::mt19937 rng(7);
  for (int round = 0; round < 500; ++round) {
    ExpectSameAsTree(testing::RandomStruct(rng));
  }
}

TEST(StructToJsonTextTest, RefusesWhatTheTreePathRefuses) {
  google::protobuf::Struct infinite;
  (*infinite.mutable_fields())["x"].set_number_value(std::numeric_limits<double>::infinity());
  auto text = StructToJsonText(infinite);
  ASSERT_FALSE(text.ok());
  EXPECT_THAT(std::string(text.status().message()), ::testing::HasSubstr("finite"));

  google::protobuf::Struct deep;
  google::protobuf::Value* at = &(*deep.mutable_fields())["d"];
  for (int i = 0; i < 150; ++i) at = &(*at->mutable_struct_value()->mutable_fields())["d"];
  at->set_bool_value(true);
  auto nested = StructToJsonText(deep);
  ASSERT_FALSE(nested.ok());
  EXPECT_THAT(std::string(nested.status().message()), ::testing::HasSubstr("deeper than 100"));
  EXPECT_FALSE(StructToJson(deep).ok());
}

}  // namespace
}  // namespace elexirion::api
