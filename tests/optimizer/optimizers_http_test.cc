// The optimizers end to end over real HTTP: the fake provider server (tests/fakes) answers
// through FakeDspyModel, reached through a ProviderRouter (openai kind, 127.0.0.1) with the
// in-memory LLM cache. Each optimizer must raise held-out accuracy over zero-shot; an
// instruction optimizer must lift a task that demos cannot fix; runs are deterministic, warm
// caches replay without provider calls, parallel equals sequential, and the job hooks
// (events, cancellation, budget, checkpoints) behave.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/optimizer/optimize.h"
#include "server/optimizer/save_format.h"
#include "tests/optimizer/test_util.h"

namespace elexirion::optimizer {
namespace {

using ::elexirion::optimizer::testing::ArithmeticExamples;
using ::elexirion::optimizer::testing::FakeModelServer;
using ::elexirion::optimizer::testing::LoadOrDie;
using ::testing::HasSubstr;

class RecordingSink final : public EventSink {
 public:
  void OnPhase(std::string_view phase, std::string_view) override {
    absl::MutexLock lock(&mu_);
    phases.emplace_back(phase);
  }
  void OnTrialStarted(int trial, const ojson&) override {
    absl::MutexLock lock(&mu_);
    started.push_back(trial);
    if (cancel_after_trials > 0 && static_cast<int>(started.size()) > cancel_after_trials) {
      cancel->Cancel("stop requested");
    }
  }
  void OnTrialFinished(int trial, const ojson&, double score, bool) override {
    absl::MutexLock lock(&mu_);
    finished.push_back({trial, score});
  }
  void OnNewBest(int, double score) override {
    absl::MutexLock lock(&mu_);
    bests.push_back(score);
  }
  void OnBootstrap(const BootstrapEvent& e) override {
    absl::MutexLock lock(&mu_);
    bootstrap.push_back(e);
  }
  void OnUsage(const llm::Usage& u) override {
    absl::MutexLock lock(&mu_);
    last_usage = u;
  }

  absl::Mutex mu_;
  std::vector<std::string> phases;
  std::vector<int> started;
  std::vector<std::pair<int, double>> finished;
  std::vector<double> bests;
  std::vector<BootstrapEvent> bootstrap;
  llm::Usage last_usage;
  int cancel_after_trials = 0;
  CancellationToken* cancel = nullptr;
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

class OptimizersHttpTest : public ::testing::Test {
 protected:
  OptimizeRequest Request(const std::string& optimizer, ojson params, char op) {
    return testing::ArithmeticRequest(optimizer, std::move(params), op);
  }

  absl::StatusOr<OptimizeResult> Run(const OptimizeRequest& r, llm::LlmClient* client = nullptr,
                                     EventSink* events = nullptr) {
    OptimizeHooks hooks;
    hooks.client = client != nullptr ? client : &fake_.router();
    hooks.events = events;
    return RunOptimization(r, hooks);
  }

  FakeModelServer fake_;
};

TEST_F(OptimizersHttpTest, LabeledFewShotRaisesAccuracy) {
  auto result = Run(Request("labeled_few_shot", ojson{{"k", 4}}, '+'));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->report.baseline_score, 0.0);
  EXPECT_EQ(result->report.optimized_score, 100.0);
  EXPECT_EQ(result->program.predictors[0].demos.size(), 4u);
  EXPECT_GT(fake_.server().request_count(), 0);
  EXPECT_EQ(result->report.end_reason, EndReason::kCompleted);
  // The optimized YAML is plain pipeline_ex YAML holding the demos in the static part.
  EXPECT_THAT(result->optimized_yaml, HasSubstr("Example 1:"));
  EXPECT_THAT(result->optimized_yaml, HasSubstr("[[ ## answer ## ]]"));
  auto reloaded = pipeline::LoadPipeline(result->optimized_yaml);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
}

TEST_F(OptimizersHttpTest, BootstrapFewShotRaisesAccuracyWithEvents) {
  RecordingSink sink;
  auto result =
      Run(Request("bootstrap_few_shot", ojson{{"max_labeled_demos", 4}}, '+'), nullptr, &sink);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->report.baseline_score, 0.0);
  EXPECT_EQ(result->report.optimized_score, 100.0);
  const auto& demos = result->program.predictors[0].demos;
  ASSERT_EQ(demos.size(), 4u);  // 4 bootstrapped traces, no room for raw labeled rows
  for (const ojson& d : demos) EXPECT_TRUE(d.value("augmented", false));
  ASSERT_EQ(sink.bootstrap.size(), 4u);
  EXPECT_TRUE(sink.bootstrap.back().accepted);
  EXPECT_EQ(sink.bootstrap.back().accepted_total, 4);
  EXPECT_THAT(sink.phases, ::testing::Contains("baseline"));
  EXPECT_GT(result->report.usage.llm_calls, 0);
  EXPECT_GT(result->report.usage.input_tokens, 0);
  EXPECT_GT(result->report.usage.cost_usd, 0);
  EXPECT_THAT(result->dspy_json, HasSubstr("\"augmented\": true"));
}

TEST_F(OptimizersHttpTest, RandomSearchRaisesAccuracyAndLogsTrials) {
  RecordingSink sink;
  auto result = Run(Request("bootstrap_random_search",
                            ojson{{"num_candidate_programs", 3}, {"max_labeled_demos", 4}}, '+'),
                    nullptr, &sink);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->report.optimized_score, 100.0);
  ASSERT_EQ(result->report.trials.size(), 6u);  // seeds -3..2
  EXPECT_EQ(result->report.trials[0].params.at("seed"), -3);
  EXPECT_EQ(result->report.trials[0].score, 0.0);
  EXPECT_EQ(sink.finished.size(), 6u);
  EXPECT_EQ(sink.bests.front(), 0.0);
  EXPECT_EQ(sink.bests.back(), 100.0);
}

TEST_F(OptimizersHttpTest, InstructionOptimizersLiftATaskDemosCannotFix) {
  // Multiplication is answered right only with the cue words in the instruction.
  auto boot = Run(Request("bootstrap_few_shot", ojson::object(), '*'));
  ASSERT_TRUE(boot.ok()) << boot.status();
  EXPECT_EQ(boot->report.baseline_score, 0.0);
  EXPECT_EQ(boot->report.optimized_score, 0.0);

  auto copro = Run(Request("copro", ojson{{"breadth", 3}, {"depth", 2}}, '*'));
  ASSERT_TRUE(copro.ok()) << copro.status();
  EXPECT_EQ(copro->report.baseline_score, 0.0);
  EXPECT_EQ(copro->report.optimized_score, 100.0);
  EXPECT_THAT(copro->program.predictors[0].signature.instructions, HasSubstr("step by step"));
  EXPECT_EQ(copro->program.predictors[0].Prefix("answer"), "Answer:");
  EXPECT_THAT(copro->optimized_yaml, HasSubstr("step by step"));

  auto mipro = Run(Request("miprov2", ojson{{"auto", "light"}}, '*'));
  ASSERT_TRUE(mipro.ok()) << mipro.status();
  if (std::getenv("ELX_DEBUG") != nullptr) {
    std::fprintf(stderr, "%s\n%s\n%s\n", ReportToJson(copro->report).dump(1).c_str(),
                 ReportToJson(mipro->report).dump(1).c_str(), mipro->dspy_json.c_str());
  }
  EXPECT_EQ(mipro->report.baseline_score, 0.0);
  EXPECT_EQ(mipro->report.optimized_score, 100.0);
  EXPECT_THAT(mipro->program.predictors[0].signature.instructions, HasSubstr("step by step"));
  // strip_prefix removed the "Proposed Instruction:" label the model wrote.
  EXPECT_THAT(mipro->program.predictors[0].signature.instructions,
              ::testing::Not(HasSubstr("Proposed Instruction")));
}

TEST_F(OptimizersHttpTest, MiproRaisesAccuracyWithDemos) {
  RecordingSink sink;
  auto result = Run(Request("miprov2", ojson{{"auto", "light"}}, '+'), nullptr, &sink);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->report.baseline_score, 0.0);
  EXPECT_EQ(result->report.optimized_score, 100.0);
  // light, one predictor, few-shot, 20 validation examples (no minibatching): 10 trials plus
  // the default evaluation.
  EXPECT_EQ(result->report.trials.size(), 11u);
  EXPECT_THAT(sink.phases, ::testing::Contains("propose"));

  // More than 50 validation examples: minibatches of 35 with periodic full evaluations.
  OptimizeRequest big = Request("miprov2", ojson{{"auto", "light"}}, '+');
  big.valset = ArithmeticExamples(60, '+', 200);
  auto mb = Run(big);
  ASSERT_TRUE(mb.ok()) << mb.status();
  EXPECT_EQ(mb->report.optimized_score, 100.0);
  int minibatch = 0;
  int full = 0;
  for (const TrialRecord& t : mb->report.trials) {
    if (t.minibatch) {
      ++minibatch;
      EXPECT_EQ(t.size, 35);
    } else {
      ++full;
      EXPECT_EQ(t.size, 60);
    }
  }
  EXPECT_EQ(minibatch, 10);
  // The default program, one full evaluation after 5 minibatch trials, and one at the end.
  EXPECT_EQ(full, 3);
}

TEST_F(OptimizersHttpTest, SameSeedSameJsonWarmCacheNoCalls) {
  OptimizeRequest request =
      Request("bootstrap_random_search",
              ojson{{"num_candidate_programs", 2}, {"max_labeled_demos", 3}}, '+');
  request.seed = 3;
  auto first = Run(request);
  ASSERT_TRUE(first.ok()) << first.status();
  const int calls = fake_.server().request_count();
  EXPECT_GT(calls, 0);
  // Warm cache: zero provider calls, identical program.
  auto warm = Run(request);
  ASSERT_TRUE(warm.ok()) << warm.status();
  EXPECT_EQ(fake_.server().request_count(), calls);
  EXPECT_EQ(warm->report.usage.llm_calls, 0);
  EXPECT_GT(warm->report.usage.cache_hits, 0);
  EXPECT_EQ(warm->dspy_json, first->dspy_json);
  // Cold cache, same seed: identical JSON again.
  auto cold_router = fake_.MakeRouter(std::make_shared<llm::InMemoryLlmCache>(), 64);
  auto cold = Run(request, cold_router.get());
  ASSERT_TRUE(cold.ok()) << cold.status();
  EXPECT_EQ(cold->dspy_json, first->dspy_json);
  EXPECT_GT(fake_.server().request_count(), calls);
  // MIPROv2 and COPRO replay from a warm cache too.
  for (const auto& [name, params] : std::vector<std::pair<std::string, ojson>>{
           {"miprov2", ojson{{"auto", "light"}}}, {"copro", ojson{{"breadth", 3}, {"depth", 2}}}}) {
    OptimizeRequest r = Request(name, params, '*');
    r.seed = 11;
    auto a = Run(r);
    ASSERT_TRUE(a.ok()) << a.status();
    const int before = fake_.server().request_count();
    auto b = Run(r);
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_EQ(fake_.server().request_count(), before) << name;
    EXPECT_EQ(b->dspy_json, a->dspy_json) << name;
  }
}

TEST_F(OptimizersHttpTest, ParallelAndSequentialGiveIdenticalPrograms) {
  for (const auto& [name, params, op] : std::vector<std::tuple<std::string, ojson, char>>{
           {"bootstrap_random_search",
            ojson{{"num_candidate_programs", 3}, {"max_labeled_demos", 2}}, '+'},
           {"copro", ojson{{"breadth", 3}, {"depth", 2}}, '*'},
           {"miprov2", ojson{{"auto", "light"}}, '+'}}) {
    OptimizeRequest r = Request(name, params, op);
    r.num_threads = 1;
    auto seq_router = fake_.MakeRouter(std::make_shared<llm::InMemoryLlmCache>(), 64);
    auto seq = Run(r, seq_router.get());
    ASSERT_TRUE(seq.ok()) << seq.status();
    r.num_threads = 16;
    auto par_router = fake_.MakeRouter(std::make_shared<llm::InMemoryLlmCache>(), 64);
    auto par = Run(r, par_router.get());
    ASSERT_TRUE(par.ok()) << par.status();
    EXPECT_EQ(par->dspy_json, seq->dspy_json) << name;
    EXPECT_EQ(par->report.optimized_score, seq->report.optimized_score) << name;
  }
}

TEST_F(OptimizersHttpTest, CancellationEndsWithBestSoFar) {
  CancellationToken cancel;
  RecordingSink sink;
  sink.cancel = &cancel;
  sink.cancel_after_trials = 2;  // cancel when the third trial starts
  OptimizeRequest r = Request("bootstrap_random_search",
                              ojson{{"num_candidate_programs", 4}, {"max_labeled_demos", 4}}, '+');
  OptimizeHooks hooks;
  hooks.client = &fake_.router();
  hooks.events = &sink;
  hooks.cancel = &cancel;
  auto result = RunOptimization(r, hooks);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->report.end_reason, EndReason::kCancelled);
  EXPECT_EQ(result->report.end_message, "stop requested");
  // Trials -3 (zero-shot, 0%) and -2 (labeled, 100%) finished: the labeled program is returned.
  EXPECT_EQ(result->report.trials.size(), 2u);
  EXPECT_EQ(result->report.optimized_score, 100.0);
  EXPECT_EQ(result->program.predictors[0].demos.size(), 4u);
  EXPECT_FALSE(result->dspy_json.empty());
}

TEST_F(OptimizersHttpTest, BudgetExhaustionEndsWithBestSoFar) {
  OptimizeRequest r = Request("bootstrap_random_search",
                              ojson{{"num_candidate_programs", 16}, {"max_labeled_demos", 4}}, '+');
  llm::BudgetLimits limits;
  limits.max_calls = 50;  // baseline (20) + labeled candidate (20) + a little
  llm::UsageAccount account(limits);
  OptimizeHooks hooks;
  hooks.client = &fake_.router();
  hooks.account = &account;
  auto result = RunOptimization(r, hooks);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->report.end_reason, EndReason::kBudgetExhausted);
  EXPECT_THAT(result->report.end_message, HasSubstr("budget exhausted"));
  EXPECT_LE(account.Snapshot().llm_calls, 50 + 8);  // calls already in flight may finish
  EXPECT_EQ(result->report.optimized_score, 100.0);
  EXPECT_EQ(result->program.predictors[0].demos.size(), 4u);
}

TEST_F(OptimizersHttpTest, CheckpointResumeSkipsFinishedWork) {
  OptimizeRequest r = Request("bootstrap_random_search",
                              ojson{{"num_candidate_programs", 3}, {"max_labeled_demos", 3}}, '+');
  Checkpoints checkpoints;
  OptimizeHooks hooks;
  hooks.client = &fake_.router();
  hooks.checkpoint = &checkpoints;
  auto full = RunOptimization(r, hooks);
  ASSERT_TRUE(full.ok()) << full.status();
  ASSERT_GT(checkpoints.docs.size(), 4u);
  const int full_calls = static_cast<int>(full->report.usage.llm_calls);

  // Resume from a mid-run checkpoint with a cold cache: fewer calls, same program.
  const ojson mid = checkpoints.docs[checkpoints.docs.size() / 2];
  auto cold = fake_.MakeRouter(std::make_shared<llm::InMemoryLlmCache>(), 64);
  OptimizeHooks resume;
  resume.client = cold.get();
  resume.resume_from = &mid;
  auto resumed = RunOptimization(r, resume);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->dspy_json, full->dspy_json);
  EXPECT_GT(resumed->report.resumed_units, 0);
  EXPECT_LT(resumed->report.usage.llm_calls, full_calls);

  // The final checkpoint of a finished run replays it without a single provider call.
  auto cold3 = fake_.MakeRouter(std::make_shared<llm::InMemoryLlmCache>(), 64);
  OptimizeHooks finished;
  finished.client = cold3.get();
  finished.resume_from = &full->checkpoint;
  const int before = fake_.server().request_count();
  auto replay = RunOptimization(r, finished);
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_EQ(fake_.server().request_count(), before);
  EXPECT_EQ(replay->report.usage.llm_calls, 0);
  EXPECT_EQ(replay->dspy_json, full->dspy_json);
  EXPECT_EQ(replay->report.validation_results.size(), full->report.validation_results.size());

  // A checkpoint of another request is ignored.
  OptimizeRequest other = r;
  other.seed = 99;
  auto cold2 = fake_.MakeRouter(std::make_shared<llm::InMemoryLlmCache>(), 64);
  OptimizeHooks mismatched;
  mismatched.client = cold2.get();
  mismatched.resume_from = &full->checkpoint;
  auto fresh = RunOptimization(other, mismatched);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_EQ(fresh->report.resumed_units, 0);
}

TEST_F(OptimizersHttpTest, MultiStepPipelineBootstrapsEveryPredictor) {
  OptimizeRequest r = Request("bootstrap_few_shot", ojson{{"max_labeled_demos", 4}}, '+');
  r.pipeline = LoadOrDie(R"(workflow:
  name: solve_and_check
  steps:
    - name: solve
      type: claude
      signature: "question -> answer"
      prompt: [{type: static, content: "Answer the arithmetic question."}]
    - name: check
      type: claude
      predictor: chain_of_thought
      signature: "question, answer -> confidence: int"
      prompt:
        - {type: static, content: "Rate the answer."}
        - {type: previous_response, step: solve, extract: text}
)");
  auto result = Run(r);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->report.baseline_score, 0.0);
  EXPECT_EQ(result->report.optimized_score, 100.0);
  ASSERT_EQ(result->program.predictors.size(), 2u);
  // Every predictor got the augmented trace of its own call.
  const ojson& check_demo = result->program.predictors[1].demos.at(0);
  EXPECT_TRUE(check_demo.value("augmented", false));
  EXPECT_EQ(check_demo.at("confidence"), 8);
  EXPECT_TRUE(check_demo.contains("reasoning"));
  EXPECT_EQ(check_demo.at("answer"), result->program.predictors[0].demos.at(0).at("answer"));
  EXPECT_THAT(result->dspy_json, HasSubstr("\"check.predict\": {"));
  EXPECT_EQ(result->report.validation_results[0].prediction.at("confidence"), 8);
}

TEST_F(OptimizersHttpTest, ParseFailuresAreCountedAndRecovered) {
  OptimizeRequest r = Request("labeled_few_shot", ojson{{"k", 4}}, '+');
  r.valset = ArithmeticExamples(4, '+', 100);
  r.valset[0].input["question"] = "parse-me: What is 2 + 2?";
  r.valset[0].expected_output["answer"] = "4";
  auto result = Run(r);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_GE(result->report.parse_failures, 1);
  EXPECT_EQ(result->report.optimized_score, 100.0);
}

TEST_F(OptimizersHttpTest, BadInputIsRejectedBeforeAnyCall) {
  OptimizeRequest r = Request("bootstrap_few_shot", ojson::object(), '+');
  r.metric.field = "verdict";
  auto bad = Run(r);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("metric: field \"verdict\""));
  OptimizeRequest empty = Request("bootstrap_few_shot", ojson::object(), '+');
  empty.trainset.clear();
  EXPECT_THAT(std::string(Run(empty).status().message()), HasSubstr("trainset"));
  OptimizeRequest unknown = Request("bootstrap_few_shot", ojson{{"max_demos", 3}}, '+');
  EXPECT_THAT(std::string(Run(unknown).status().message()),
              HasSubstr("optimizer.bootstrap_few_shot.max_demos"));
  OptimizeRequest steps = Request("copro", ojson::object(), '+');
  steps.program.steps = {"missing"};
  EXPECT_THAT(std::string(Run(steps).status().message()), HasSubstr("steps: \"missing\""));
  EXPECT_EQ(fake_.server().request_count(), 0);
}

}  // namespace
}  // namespace elexirion::optimizer
