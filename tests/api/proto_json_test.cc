// StructToJsonText writes exactly what the tree path (StructToJson, then dump()) writes: the
// stored execution JSON and the content hashes of harvested examples depend on it.
#include "server/api/proto_json.h"

#include <functional>
#include <limits>
#include <random>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

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
  auto random_string = [&] {
    std::string s;
    const int n = static_cast<int>(rng() % 12);
    for (int i = 0; i < n; ++i) {
      switch (rng() % 4) {
        case 0:
          s.push_back(static_cast<char>(rng() % 0x20));  // control characters
          break;
        case 1:
          s += "\xc3\xa9";  // é
          break;
        default:
          s.push_back(static_cast<char>(0x20 + rng() % 0x5f));
      }
    }
    return s;
  };
  std::function<void(google::protobuf::Value*, int)> fill = [&](google::protobuf::Value* v,
                                                                int depth) {
    switch (rng() % (depth < 4 ? 7 : 5)) {
      case 0:
        v->set_null_value(google::protobuf::NULL_VALUE);
        break;
      case 1:
        v->set_bool_value(rng() % 2 == 0);
        break;
      case 2:
        v->set_number_value(static_cast<double>(static_cast<int32_t>(rng())) /
                            (rng() % 3 == 0 ? 1.0 : 1000.0));
        break;
      case 3:
      case 4:
        v->set_string_value(random_string());
        break;
      case 5:
        for (int i = static_cast<int>(rng() % 4); i > 0; --i) {
          fill(&(*v->mutable_struct_value()->mutable_fields())[random_string()], depth + 1);
        }
        break;
      default:
        for (int i = static_cast<int>(rng() % 4); i > 0; --i) {
          fill(v->mutable_list_value()->add_values(), depth + 1);
        }
    }
  };
  for (int round = 0; round < 500; ++round) {
    google::protobuf::Struct value;
    for (int i = static_cast<int>(rng() % 6); i > 0; --i) {
      fill(&(*value.mutable_fields())[random_string()], 0);
    }
    ExpectSameAsTree(value);
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
