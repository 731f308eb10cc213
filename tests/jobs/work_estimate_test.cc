#include "server/jobs/work_estimate.h"

#include "gtest/gtest.h"

namespace elexirion::jobs {
namespace {

TEST(WorkEstimateTest, BootstrapJobMovesThroughItsPhases) {
  // 10 validation runs for baseline and final, 20 bootstrap examples: 40 units.
  WorkEstimate estimate({/*validation_size=*/10, /*train_size=*/20, 0, false});
  EXPECT_EQ(estimate.fraction(), 0);
  EXPECT_EQ(estimate.EtaSeconds(absl::Seconds(5)), 0) << "nothing measured yet";
  estimate.OnPhase("bootstrap", "");
  EXPECT_DOUBLE_EQ(estimate.fraction(), 0.25);
  // 5 s for a quarter: 15 s left.
  EXPECT_DOUBLE_EQ(estimate.EtaSeconds(absl::Seconds(5)), 15);
  estimate.OnBootstrap(/*done=*/10, /*total=*/20, /*accepted=*/1, /*needed=*/4);
  EXPECT_DOUBLE_EQ(estimate.fraction(), 0.5);
  // Enough demos accepted: bootstrapping is over even before every example is seen.
  estimate.OnBootstrap(12, 20, 4, 4);
  EXPECT_DOUBLE_EQ(estimate.fraction(), 0.75);
  // Never goes back.
  estimate.OnBootstrap(1, 20, 0, 4);
  EXPECT_DOUBLE_EQ(estimate.fraction(), 0.75);
  estimate.OnPhase("final", "");
  EXPECT_DOUBLE_EQ(estimate.fraction(), 0.75);
  estimate.Finish();
  EXPECT_EQ(estimate.fraction(), 1);
  EXPECT_EQ(estimate.EtaSeconds(absl::Seconds(20)), 0);
}

TEST(WorkEstimateTest, TrialsAndReferenceEvaluation) {
  // Baseline 4 + 5 trials x 4 + final 4 + reference 4 = 32 units.
  WorkEstimate estimate({4, 16, /*trials_total=*/5, /*reference=*/true});
  estimate.OnPhase("search", "");
  estimate.OnBootstrap(16, 16, 4, 4);  // per-candidate bootstraps do not count
  EXPECT_DOUBLE_EQ(estimate.fraction(), 4.0 / 32);
  estimate.OnTrialFinished(5);
  EXPECT_DOUBLE_EQ(estimate.fraction(), 24.0 / 32);
  estimate.OnPhase("reference", "");
  EXPECT_DOUBLE_EQ(estimate.fraction(), 28.0 / 32);
}

TEST(WorkEstimateTest, MiproTrialCountComesFromItsSearchPhase) {
  WorkEstimate estimate({4, 16, 0, false});
  EXPECT_EQ(estimate.trials_total(), 0);
  estimate.OnPhase("search", "12 trials");
  EXPECT_EQ(estimate.trials_total(), 12);
  estimate.OnTrialFinished(6);
  EXPECT_DOUBLE_EQ(estimate.fraction(), (4.0 + 24) / (4 + 48 + 4));
}

}  // namespace
}  // namespace elexirion::jobs
