// ComputeUsageStats over a real SQLite store, and the should_optimize rules.
#include "server/learning/usage.h"

#include "gtest/gtest.h"
#include "tests/learning/learning_test_util.h"
#include "tests/testutil/temp_dir.h"

namespace elexirion::learning {
namespace {

using testing::AddExamples;
using testing::AddExecutions;
using testing::AddProgram;
using testing::OpenStore;
using testing::TestPolicy;

class UsageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = OpenStore(dir_.File("usage.db"), &clock_);
    ASSERT_NE(store_, nullptr);
  }

  UsageStats Usage(const PipelinePolicy& policy) {
    auto usage = ComputeUsageStats(*store_, policy, absl::Hours(24), clock_.Now());
    EXPECT_TRUE(usage.ok()) << usage.status();
    return usage.ok() ? *usage : UsageStats{};
  }

  testutil::TempDir dir_;
  FakeClock clock_{absl::FromUnixSeconds(1'800'000'000)};
  std::unique_ptr<store::SqliteStore> store_;
};

TEST_F(UsageTest, NoExecutionsIsHealthyAndDoesNotOptimize) {
  PipelinePolicy policy = TestPolicy("p");
  UsageStats usage = Usage(policy);
  EXPECT_EQ(usage.summary.executions, 0);
  EXPECT_EQ(usage.success_rate, 1.0);
  // Missing dataset: zero new examples, not an error.
  EXPECT_EQ(usage.new_examples_since_optimization, 0);
  EXPECT_EQ(usage.last_optimization_time, store::kUnsetTime);
  EXPECT_EQ(usage.baseline_success_rate, 0.95);
  std::string reason;
  EXPECT_FALSE(ShouldOptimize(usage, policy, &reason));
  EXPECT_NE(reason.find("healthy"), std::string::npos) << reason;
}

TEST_F(UsageTest, BelowBaselineOptimizes) {
  PipelinePolicy policy = TestPolicy("p");
  AddExecutions(*store_, "p", 94, 6, clock_.Now() - absl::Hours(1));
  UsageStats usage = Usage(policy);
  EXPECT_EQ(usage.summary.executions, 100);
  EXPECT_DOUBLE_EQ(usage.success_rate, 0.94);
  std::string reason;
  EXPECT_TRUE(ShouldOptimize(usage, policy, &reason));
  EXPECT_NE(reason.find("below baseline"), std::string::npos) << reason;
}

TEST_F(UsageTest, AtBaselineDoesNotOptimize) {
  PipelinePolicy policy = TestPolicy("p");
  AddExecutions(*store_, "p", 95, 5, clock_.Now() - absl::Hours(1));
  EXPECT_FALSE(ShouldOptimize(Usage(policy), policy));
}

TEST_F(UsageTest, ExecutionsOutsideTheWindowDoNotCount) {
  PipelinePolicy policy = TestPolicy("p");
  AddExecutions(*store_, "p", 0, 10, clock_.Now() - absl::Hours(25));
  AddExecutions(*store_, "other", 0, 10, clock_.Now() - absl::Hours(1));
  UsageStats usage = Usage(policy);
  EXPECT_EQ(usage.summary.executions, 0);
  EXPECT_FALSE(ShouldOptimize(usage, policy));
}

TEST_F(UsageTest, MoreThanTenNewExamplesOptimizesExactlyTenDoesNot) {
  PipelinePolicy policy = TestPolicy("p");
  AddExamples(*store_, "p", 10);
  UsageStats usage = Usage(policy);
  EXPECT_EQ(usage.new_examples_since_optimization, 10);
  EXPECT_FALSE(ShouldOptimize(usage, policy));

  AddExamples(*store_, "p", 1);
  usage = Usage(policy);
  EXPECT_EQ(usage.new_examples_since_optimization, 11);
  std::string reason;
  EXPECT_TRUE(ShouldOptimize(usage, policy, &reason));
  EXPECT_NE(reason.find("11 new examples"), std::string::npos) << reason;
}

TEST_F(UsageTest, OnlyExamplesSinceTheLastOptimizationAreNew) {
  PipelinePolicy policy = TestPolicy("p");
  AddExamples(*store_, "p", 30);
  clock_.Advance(absl::Minutes(1));
  AddProgram(*store_, "p");
  clock_.Advance(absl::Minutes(1));
  AddExamples(*store_, "p", 3);
  UsageStats usage = Usage(policy);
  EXPECT_EQ(usage.new_examples_since_optimization, 3);
  EXPECT_EQ(usage.last_optimization_time, clock_.Now() - absl::Minutes(1));
  EXPECT_FALSE(ShouldOptimize(usage, policy));
}

TEST_F(UsageTest, StoredBaselineOverridesThePolicy) {
  PipelinePolicy policy = TestPolicy("p");
  AddExecutions(*store_, "p", 90, 10, clock_.Now() - absl::Hours(1));
  EXPECT_TRUE(ShouldOptimize(Usage(policy), policy));

  store::PipelineBaselineRecord baseline;
  baseline.pipeline_name = "p";
  baseline.success_rate = 0.85;
  baseline.executions = 500;
  ASSERT_TRUE(store_->PutPipelineBaseline(baseline).ok());
  UsageStats usage = Usage(policy);
  EXPECT_DOUBLE_EQ(usage.baseline_success_rate, 0.85);
  EXPECT_FALSE(ShouldOptimize(usage, policy));
}

TEST_F(UsageTest, PolicyThresholdsAreHonored) {
  PipelinePolicy policy = TestPolicy("p");
  policy.baseline_success_rate = 0.5;
  policy.min_new_examples = 2;
  AddExecutions(*store_, "p", 6, 4, clock_.Now() - absl::Hours(1));
  AddExamples(*store_, "p", 2);
  EXPECT_FALSE(ShouldOptimize(Usage(policy), policy));
  AddExamples(*store_, "p", 1);
  EXPECT_TRUE(ShouldOptimize(Usage(policy), policy));
}

}  // namespace
}  // namespace elexirion::learning
