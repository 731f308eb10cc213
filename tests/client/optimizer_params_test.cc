#include "client/cli/optimizer_params.h"

#include "elexirion/v1/common.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace elexirion::cli {
namespace {

v1::OptimizerSpec Parse(const std::string& optimizer, const std::vector<std::string>& params) {
  auto json = OptimizerSpecJson(optimizer, params);
  EXPECT_TRUE(json.ok()) << json.status();
  v1::OptimizerSpec spec;
  auto st = google::protobuf::util::JsonStringToMessage(json->dump(), &spec);
  EXPECT_TRUE(st.ok()) << st.message() << " in " << json->dump();
  return spec;
}

TEST(OptimizerParamsTest, ShortEnumNamesResolveToTheProtoNames) {
  v1::OptimizerSpec gepa =
      Parse("gepa", {"auto=light", "component_selector=round_robin", "use_merge=false"});
  EXPECT_EQ(gepa.gepa().auto_(), v1::OptimizerSpec::Gepa::AUTO_LIGHT);
  EXPECT_FALSE(gepa.gepa().use_merge());
  EXPECT_EQ(Parse("miprov2", {"auto=Heavy"}).miprov2().auto_(),
            v1::OptimizerSpec::MiproV2::AUTO_HEAVY);
  EXPECT_EQ(Parse("gepa", {"auto=AUTO_MEDIUM"}).gepa().auto_(),
            v1::OptimizerSpec::Gepa::AUTO_MEDIUM);
}

TEST(OptimizerParamsTest, NumbersStayNumbersAndUnknownNamesReachTheParser) {
  EXPECT_EQ(Parse("bootstrap_few_shot", {"max_bootstrapped_demos=3"})
                .bootstrap_few_shot()
                .max_bootstrapped_demos(),
            3);
  auto json = OptimizerSpecJson("gepa", {"auto=gigantic"});
  ASSERT_TRUE(json.ok());
  EXPECT_EQ((*json)["gepa"]["auto"], "gigantic");
  v1::OptimizerSpec spec;
  EXPECT_FALSE(google::protobuf::util::JsonStringToMessage(json->dump(), &spec).ok());
}

TEST(OptimizerParamsTest, AParameterWithoutEqualsIsRejected) {
  auto json = OptimizerSpecJson("gepa", {"auto"});
  ASSERT_FALSE(json.ok());
  EXPECT_EQ(json.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(json.status().message().find("key=value"), std::string::npos);
}

}  // namespace
}  // namespace elexirion::cli
