// GEPA and SIMBA end to end over real HTTP: the fake provider server (tests/fakes) answers
// through FakeDspyModel (tests/optimizer/test_util.h) as the task model, the judge and the
// reflection model. GEPA must fix a task only an instruction can fix, and one only the metric's
// feedback text explains; SIMBA must lift the task demos fix. Parallel equals sequential,
// checkpoints resume without repeating calls, bad parameters are INVALID_ARGUMENT naming the
// field before any call.
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/optimizer/optimize.h"
#include "tests/optimizer/test_util.h"

namespace elexirion::optimizer {
namespace {

using ::elexirion::optimizer::testing::ArithmeticExamples;
using ::elexirion::optimizer::testing::ArithmeticRequest;
using ::elexirion::optimizer::testing::FakeModelServer;
using ::testing::HasSubstr;

class IterationSink final : public EventSink {
 public:
  void OnIteration(const IterationEvent& e) override {
    absl::MutexLock lock(&mu_);
    iterations.push_back(e);
  }
  absl::Mutex mu_;
  std::vector<IterationEvent> iterations;
};

class Checkpoints final : public CheckpointSink {
 public:
  void Save(const ojson& doc) override {
    absl::MutexLock lock(&mu_);
    docs.push_back(doc);
  }
  absl::Mutex mu_;
  std::vector<ojson> docs;
};

// Subtraction is answered right only with the cue "borrow carefully"; the judge's rubric
// names it, so the judge's reasoning (the metric's feedback) does when an answer is wrong.
MetricSpec JudgeNamingTheCue() {
  MetricSpec m;
  m.kind = MetricSpec::Kind::kLlmJudge;
  m.judge.provider = "fake";
  m.rubric = "The answer must equal the expected number. Solvers must 'borrow carefully'.";
  return m;
}

class GepaSimbaHttpTest : public ::testing::Test {
 protected:
  absl::StatusOr<OptimizeResult> Run(const OptimizeRequest& r, llm::LlmClient* client = nullptr,
                                     EventSink* events = nullptr,
                                     CheckpointSink* checkpoint = nullptr,
                                     const ojson* resume = nullptr) {
    OptimizeHooks hooks;
    hooks.client = client != nullptr ? client : &fake_.router();
    hooks.events = events;
    hooks.checkpoint = checkpoint;
    hooks.resume_from = resume;
    return RunOptimization(r, hooks);
  }
  std::unique_ptr<llm::ProviderRouter> ColdRouter() {
    return fake_.MakeRouter(std::make_shared<llm::InMemoryLlmCache>(), 64);
  }

  FakeModelServer fake_;
};

TEST_F(GepaSimbaHttpTest, GepaFixesATaskOnlyAnInstructionCanFix) {
  IterationSink sink;
  auto result =
      Run(ArithmeticRequest("gepa", ojson{{"max_metric_calls", 120}}, '*'), nullptr, &sink);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->report.baseline_score, 0.0);
  EXPECT_EQ(result->report.optimized_score, 100.0);
  const Predictor& p = result->program.predictors[0];
  EXPECT_THAT(p.signature.instructions, HasSubstr("step by step"));
  EXPECT_THAT(p.signature.instructions, ::testing::Not(HasSubstr("```")));
  EXPECT_TRUE(p.demos.empty());  // GEPA evolves instructions only
  ASSERT_FALSE(sink.iterations.empty());
  const IterationEvent& first = sink.iterations.front();
  EXPECT_EQ(first.optimizer, "gepa");
  EXPECT_EQ(first.kind, "reflective");
  EXPECT_EQ(first.parents, std::vector<int>{0});
  EXPECT_EQ(first.components, std::vector<std::string>{"solve"});
  EXPECT_EQ(first.minibatch_size, 3);
  EXPECT_EQ(first.minibatch_score_before, 0.0);
  EXPECT_EQ(first.minibatch_score_after, 3.0);
  EXPECT_TRUE(first.accepted);
  EXPECT_EQ(first.candidate, 1);
  ASSERT_TRUE(first.full_score.has_value());
  EXPECT_EQ(*first.full_score, 100.0);
  EXPECT_EQ(first.pareto_front_size, 1);  // the child leads every instance
  EXPECT_EQ(first.metric_calls, 20 + 3 + 3 + 20);
  EXPECT_EQ(first.max_metric_calls, 120);
  // The perfect child is then skipped on every minibatch until the budget is spent.
  for (size_t i = 1; i < sink.iterations.size(); ++i) {
    EXPECT_EQ(sink.iterations[i].kind, "skipped") << i;
  }
  EXPECT_GE(sink.iterations.back().metric_calls, 120);
  EXPECT_LT(sink.iterations.back().metric_calls, 120 + 3);
}

TEST_F(GepaSimbaHttpTest, GepaLearnsTheCueTheFeedbackNames) {
  OptimizeRequest judged = ArithmeticRequest("gepa", ojson{{"max_metric_calls", 100}}, '-');
  judged.metric = JudgeNamingTheCue();
  auto result = Run(judged);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->report.baseline_score, 0.0);
  EXPECT_EQ(result->report.optimized_score, 100.0);
  EXPECT_THAT(result->program.predictors[0].signature.instructions, HasSubstr("borrow carefully"));
  EXPECT_THAT(result->report.validation_results[0].feedback, HasSubstr("matches"));

  // Exact match's feedback says what was expected, not what the solver lacks: no cue, no fix.
  auto blind = Run(ArithmeticRequest("gepa", ojson{{"max_metric_calls", 100}}, '-'));
  ASSERT_TRUE(blind.ok()) << blind.status();
  EXPECT_EQ(blind->report.optimized_score, 0.0);
  EXPECT_THAT(blind->program.predictors[0].signature.instructions,
              ::testing::Not(HasSubstr("borrow carefully")));
  EXPECT_THAT(blind->report.validation_results[0].feedback, HasSubstr("answer should be"));
}

TEST_F(GepaSimbaHttpTest, SimbaImprovesTheEasyTask) {
  IterationSink sink;
  OptimizeRequest r =
      ArithmeticRequest("simba", ojson{{"bsize", 6}, {"num_candidates", 3}, {"max_steps", 4}}, '+');
  auto result = Run(r, nullptr, &sink);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->report.baseline_score, 0.0);
  EXPECT_EQ(result->report.optimized_score, 100.0);
  EXPECT_GE(result->program.predictors[0].demos.size(), 2u);
  for (const ojson& d : result->program.predictors[0].demos) {
    EXPECT_TRUE(d.value("augmented", false));
  }
  ASSERT_EQ(sink.iterations.size(), 4u);
  EXPECT_EQ(sink.iterations[0].optimizer, "simba");
  EXPECT_EQ(sink.iterations[0].minibatch_size, 6);
  EXPECT_EQ(sink.iterations.back().pool_size, 1 + 4 * 4);  // 4 candidates per step
}

TEST_F(GepaSimbaHttpTest, ParallelAndSequentialGiveIdenticalPrograms) {
  OptimizeRequest judged = ArithmeticRequest("gepa", ojson{{"max_metric_calls", 100}}, '-');
  judged.metric = JudgeNamingTheCue();
  for (OptimizeRequest r :
       {ArithmeticRequest("gepa", ojson{{"max_metric_calls", 90}}, '*'), judged,
        ArithmeticRequest("simba", ojson{{"bsize", 6}, {"num_candidates", 3}, {"max_steps", 3}},
                          '+')}) {
    r.num_threads = 1;
    auto seq_router = ColdRouter();
    auto seq = Run(r, seq_router.get());
    ASSERT_TRUE(seq.ok()) << seq.status();
    r.num_threads = 16;
    auto par_router = ColdRouter();
    auto par = Run(r, par_router.get());
    ASSERT_TRUE(par.ok()) << par.status();
    EXPECT_EQ(par->dspy_json, seq->dspy_json) << r.optimizer;
    EXPECT_EQ(par->report.usage.llm_calls, seq->report.usage.llm_calls) << r.optimizer;
    EXPECT_EQ(par->report.trials.size(), seq->report.trials.size()) << r.optimizer;
  }
}

TEST_F(GepaSimbaHttpTest, ResumeFromACheckpointRepeatsNoFinishedCall) {
  for (const OptimizeRequest& r :
       {ArithmeticRequest("gepa", ojson{{"max_metric_calls", 90}}, '*'),
        ArithmeticRequest("simba", ojson{{"bsize", 6}, {"num_candidates", 3}, {"max_steps", 3}},
                          '+')}) {
    Checkpoints checkpoints;
    auto router = ColdRouter();
    auto full = Run(r, router.get(), nullptr, &checkpoints);
    ASSERT_TRUE(full.ok()) << full.status();
    ASSERT_GT(checkpoints.docs.size(), 3u) << r.optimizer;
    const int full_calls = static_cast<int>(full->report.usage.llm_calls);

    // As after kill -9 mid-run: a cold cache, the last checkpoint saved by then.
    const ojson mid = checkpoints.docs[checkpoints.docs.size() / 2];
    auto cold = ColdRouter();
    auto resumed = Run(r, cold.get(), nullptr, nullptr, &mid);
    ASSERT_TRUE(resumed.ok()) << resumed.status();
    EXPECT_EQ(resumed->dspy_json, full->dspy_json) << r.optimizer;
    EXPECT_GT(resumed->report.resumed_units, 0) << r.optimizer;
    EXPECT_LT(resumed->report.usage.llm_calls, full_calls) << r.optimizer;

    // The final checkpoint replays the whole run without a provider call.
    auto cold2 = ColdRouter();
    const int before = fake_.server().request_count();
    auto replay = Run(r, cold2.get(), nullptr, nullptr, &full->checkpoint);
    ASSERT_TRUE(replay.ok()) << replay.status();
    EXPECT_EQ(fake_.server().request_count(), before) << r.optimizer;
    EXPECT_EQ(replay->dspy_json, full->dspy_json) << r.optimizer;
  }
}

TEST_F(GepaSimbaHttpTest, BadParametersAreRejectedNamingTheField) {
  struct Case {
    std::string optimizer;
    ojson params;
    std::string field;
  };
  for (const Case& c : std::vector<Case>{
           {"gepa", ojson::object(), "optimizer.gepa.auto"},
           {"gepa", ojson{{"auto", "light"}, {"max_metric_calls", 50}}, "optimizer.gepa.auto"},
           {"gepa", ojson{{"auto", "extreme"}}, "optimizer.gepa.auto"},
           {"gepa", ojson{{"auto", "light"}, {"reflection_minibatch_size", -1}},
            "optimizer.gepa.reflection_minibatch_size"},
           {"gepa", ojson{{"auto", "light"}, {"component_selector", "some"}},
            "optimizer.gepa.component_selector"},
           {"gepa", ojson{{"auto", "light"}, {"candidate_selection_strategy", "best"}},
            "optimizer.gepa.candidate_selection_strategy"},
           {"gepa", ojson{{"auto", "light"}, {"perfect_score", 2}}, "optimizer.gepa.perfect_score"},
           {"gepa", ojson{{"auto", "light"}, {"use_merge", "yes"}}, "optimizer.gepa.use_merge"},
           {"gepa", ojson{{"auto", "light"}, {"reflection_lm", {{"temperature", 3}}}},
            "optimizer.gepa.reflection_lm.temperature"},
           {"gepa", ojson{{"auto", "light"}, {"minibatch", 3}}, "optimizer.gepa.minibatch"},
           {"simba", ojson{{"bsize", 50}}, "optimizer.simba.bsize"},
           {"simba", ojson{{"max_steps", -2}}, "optimizer.simba.max_steps"},
           {"simba", ojson{{"temperature_for_sampling", -1}},
            "optimizer.simba.temperature_for_sampling"},
           {"SIMBA", ojson{{"rules", true}}, "optimizer.simba.rules"},
       }) {
    auto bad = Run(ArithmeticRequest(c.optimizer, c.params, '+'));
    EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << c.params.dump();
    EXPECT_THAT(std::string(bad.status().message()), HasSubstr(c.field)) << c.params.dump();
  }
  EXPECT_EQ(fake_.server().request_count(), 0);
}

}  // namespace
}  // namespace elexirion::optimizer
