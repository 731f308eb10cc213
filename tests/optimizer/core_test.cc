// Unit tests with a scripted LlmClient: program execution through the pipeline engine,
// metrics, Evaluate, the save format, TPE and the optimizers' bookkeeping.
#include <atomic>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/optimizer/evaluate.h"
#include "server/optimizer/metrics.h"
#include "server/optimizer/optimize.h"
#include "server/optimizer/optimizer.h"
#include "server/optimizer/optimizers.h"
#include "server/optimizer/program.h"
#include "server/optimizer/program_runner.h"
#include "server/optimizer/save_format.h"
#include "server/optimizer/tpe.h"
#include "tests/optimizer/test_util.h"

namespace elexirion::optimizer {
namespace {

using ::elexirion::optimizer::testing::ArithmeticExamples;
using ::elexirion::optimizer::testing::FakeDspyModel;
using ::elexirion::optimizer::testing::FnClient;
using ::elexirion::optimizer::testing::kQaPipeline;
using ::elexirion::optimizer::testing::LoadOrDie;
using ::elexirion::optimizer::testing::TextResponse;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The fake model behind a FnClient (no HTTP).
FnClient::Fn ModelFn() {
  return [](const llm::LlmRequest& r) -> absl::StatusOr<llm::LlmResponse> {
    std::vector<testing::ChatTurn> turns;
    for (const auto& m : r.messages) turns.push_back({m.role, m.content});
    return TextResponse(FakeDspyModel::Answer(r.system, turns, r.json_response));
  };
}

std::unique_ptr<ProgramRunner> Runner(llm::LlmClient* client,
                                      std::shared_ptr<const pipeline::Pipeline> pipeline) {
  ProgramRunner::Options o;
  o.client = client;
  o.pipeline = std::move(pipeline);
  auto r = ProgramRunner::Create(o);
  EXPECT_TRUE(r.ok()) << r.status();
  return std::move(*r);
}

MetricSpec ExactAnswer() {
  MetricSpec m;
  m.kind = MetricSpec::Kind::kExactMatch;
  m.field = "answer";
  return m;
}

TEST(ProgramRunner, PredictorCallUsesTheAdapterAndTheStep) {
  auto pipe = LoadOrDie(R"(workflow:
  name: qa
  steps:
    - name: solve
      type: claude
      signature: "question -> answer"
      claude_options: {model: sonnet, system_prompt: "Be exact."}
      prompt:
        - type: static
          content: "Answer about {{inputs.topic}}."
)");
  FnClient client([](const llm::LlmRequest&) {
    return TextResponse("[[ ## answer ## ]]\nParis\n\n[[ ## completed ## ]]");
  });
  auto runner = Runner(&client, pipe);
  auto program = BuildProgram(*pipe);
  ASSERT_TRUE(program.ok()) << program.status();
  EXPECT_EQ(program->predictors[0].signature.instructions, "Answer about {{inputs.topic}}.");
  program->predictors[0].demos.push_back(ojson{{"question", "Q1"}, {"answer", "A1"}});
  Example ex;
  ex.input = ojson{{"question", "Capital of France?"}, {"topic", "geography"}};
  RunOutcome out = runner->Run(*program, ex, RunConfig{});
  ASSERT_TRUE(out.status.ok()) << out.status;
  EXPECT_EQ(out.prediction.dump(), R"({"answer":"Paris"})");
  EXPECT_EQ(out.final_output, "Paris");
  ASSERT_EQ(client.calls(), 1u);
  const llm::LlmRequest req = client.requests()[0];
  EXPECT_EQ(req.model, "sonnet");
  EXPECT_THAT(req.system,
              ::testing::StartsWith("Be exact.\n\nYour input fields are:\n1. `question` (str):"));
  EXPECT_THAT(req.system, HasSubstr("your objective is: \n        Answer about geography."));
  ASSERT_EQ(req.messages.size(), 3u);
  EXPECT_EQ(req.messages[0].content, "[[ ## question ## ]]\nQ1");
  EXPECT_EQ(
      req.messages[2].content,
      "[[ ## question ## ]]\nCapital of France?\n\nRespond with the corresponding output fields, "
      "starting with the field `[[ ## answer ## ]]`, and then ending with the marker for "
      "`[[ ## completed ## ]]`.");
  ASSERT_EQ(out.trace.size(), 1u);
  EXPECT_EQ(out.trace[0].inputs.dump(), R"({"question":"Capital of France?"})");
}

TEST(ProgramRunner, MultiStepInputResolution) {
  auto pipe = LoadOrDie(R"(workflow:
  name: chain
  steps:
    - name: summarize
      type: claude
      signature: "input_data -> summary"
      prompt:
        - type: static
          content: "Summarize:"
        - type: static
          content: "{{inputs.text}}"
    - name: gate
      type: set_variable
      variables: {seen: true}
    - name: classify
      type: gemini
      predictor: chain_of_thought
      signature: "summary, input_data -> label"
      prompt:
        - type: previous_response
          step: summarize
          extract: text
)");
  FnClient client([](const llm::LlmRequest& r) -> absl::StatusOr<llm::LlmResponse> {
    if (absl::StrContains(r.system, "`summary` (str):\nAll")) {
      return TextResponse("[[ ## summary ## ]]\nshort text\n\n[[ ## completed ## ]]");
    }
    return TextResponse(
        "[[ ## reasoning ## ]]\nbecause\n\n[[ ## label ## ]]\nnews\n\n[[ ## completed ## ]]");
  });
  auto runner = Runner(&client, pipe);
  auto program = BuildProgram(*pipe);
  ASSERT_TRUE(program.ok()) << program.status();
  ASSERT_EQ(program->predictors.size(), 2u);
  EXPECT_EQ(program->predictors[1].kind, PredictorKind::kChainOfThought);
  EXPECT_EQ(program->predictors[1].SaveKey(), "classify.predict");
  EXPECT_EQ(program->predictors[1].signature.instructions,
            "Given the fields `summary`, `input_data`, produce the fields `label`.");
  Example ex;
  ex.input = ojson{{"text", "A long article."}};
  RunOutcome out = runner->Run(*program, ex, RunConfig{});
  ASSERT_TRUE(out.status.ok()) << out.status;
  ASSERT_EQ(out.trace.size(), 2u);
  // input_data of step 1 is its pipeline_ex rendering (static parts joined with "\n").
  EXPECT_EQ(out.trace[0].inputs.dump(), R"({"input_data":"Summarize:\nA long article."})");
  // Step 3 takes `summary` from step 1's outputs and input_data from its own rendering, which
  // holds step 1's text through previous_response.
  EXPECT_EQ(out.trace[1].inputs.dump(), R"({"summary":"short text","input_data":"short text"})");
  EXPECT_EQ(out.prediction.dump(),
            R"({"reasoning":"because","label":"news","summary":"short text"})");
}

// A step whose only static part is a {{template}} input slot has no instruction text: its
// input_data is exactly what pipeline_ex would send.
TEST(ProgramRunner, StepsInsideLoopsAndNestedPipelinesArePredictors) {
  auto pipe = LoadOrDie(R"(workflow:
  name: nested
  steps:
    - {name: items, type: set_variable, variables: {topics: [rivers, mountains]}}
    - name: each
      type: for_loop
      iterator: topic
      data_source: topics
      steps:
        - name: fact
          type: claude
          signature: "input_data -> fact"
          prompt: [{type: static, content: "One fact about {{loop.topic}}."}]
    - name: wrap
      type: pipeline
      pipeline:
        name: inner
        steps:
          - name: title
            type: gemini
            signature: "input_data -> title"
            prompt: [{type: static, content: "A title."}]
)");
  FnClient client([](const llm::LlmRequest& r) -> absl::StatusOr<llm::LlmResponse> {
    if (absl::StrContains(r.system, "`fact`")) {
      return TextResponse("[[ ## fact ## ]]\nwet\n\n[[ ## completed ## ]]");
    }
    return TextResponse("[[ ## title ## ]]\nT\n\n[[ ## completed ## ]]");
  });
  auto runner = Runner(&client, pipe);
  auto program = BuildProgram(*pipe);
  ASSERT_TRUE(program.ok()) << program.status();
  ASSERT_EQ(program->predictors.size(), 2u);
  EXPECT_EQ(program->predictors[0].name, "each/fact");
  EXPECT_EQ(program->predictors[1].name, "wrap/title");
  program->predictors[0].signature.instructions = "Give one surprising fact.";
  RunOutcome out = runner->Run(*program, Example{}, RunConfig{});
  ASSERT_TRUE(out.status.ok()) << out.status;
  // The learned instruction reaches every iteration; the rendered step is the input.
  ASSERT_EQ(client.calls(), 3u);
  EXPECT_THAT(client.requests()[0].system, HasSubstr("Give one surprising fact."));
  EXPECT_THAT(client.requests()[0].messages.back().content, HasSubstr("One fact about rivers."));
  EXPECT_THAT(client.requests()[1].messages.back().content, HasSubstr("One fact about mountains."));
  ASSERT_EQ(out.trace.size(), 3u);
  EXPECT_EQ(out.trace[1].predictor, "each/fact");
  EXPECT_EQ(out.trace[2].predictor, "wrap/title");
  // Saved under Python identifiers, mapped back to the step paths.
  EXPECT_EQ(program->predictors[0].SaveKey(), "each_fact");
  EXPECT_EQ(StepForSaveKey(*pipe, "each_fact"), "each/fact");
  EXPECT_EQ(StepForSaveKey(*pipe, "items"), "items");
  auto restored = ApplyDspyJson(*program, ToDspyJson(*program, "nested", ojson::object()));
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(restored->predictors[0].signature.instructions, "Give one surprising fact.");
  ProgramOptions only;
  only.steps = {"wrap/title"};
  auto one = BuildProgram(*pipe, only);
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->predictors.size(), 1u);
}

TEST(ProgramRunner, TemplateOnlyStepRendersInputDataLikePipelineEx) {
  auto pipe = LoadOrDie(R"(workflow:
  name: slot
  steps:
    - name: echo
      type: claude
      signature: "input_data -> summary"
      prompt:
        - type: static
          content: "{{inputs.text}}"
)");
  FnClient client([](const llm::LlmRequest&) -> absl::StatusOr<llm::LlmResponse> {
    return TextResponse("[[ ## summary ## ]]\nok\n\n[[ ## completed ## ]]");
  });
  auto runner = Runner(&client, pipe);
  auto program = BuildProgram(*pipe);
  ASSERT_TRUE(program.ok()) << program.status();
  Example ex;
  ex.input = ojson{{"text", "A long article."}};
  RunOutcome out = runner->Run(*program, ex, RunConfig{});
  ASSERT_TRUE(out.status.ok()) << out.status;
  ASSERT_EQ(out.trace.size(), 1u);
  EXPECT_EQ(out.trace[0].inputs.dump(), R"({"input_data":"A long article."})");
}

TEST(ProgramRunner, ParseFailureFallsBackToJsonAndIsCounted) {
  auto pipe = LoadOrDie(kQaPipeline);
  FnClient client(ModelFn());
  auto runner = Runner(&client, pipe);
  auto program = BuildProgram(*pipe);
  ASSERT_TRUE(program.ok());
  RunOutcome out =
      runner->Run(*program, testing::MakeExample("parse-me: What is 1 + 2?", 3), RunConfig{});
  ASSERT_TRUE(out.status.ok()) << out.status;
  EXPECT_EQ(out.parse_failures, 1);
  EXPECT_EQ(runner->parse_failures(), 1);
  ASSERT_EQ(client.calls(), 2u);
  EXPECT_FALSE(client.requests()[0].json_response);
  EXPECT_TRUE(client.requests()[1].json_response);
  EXPECT_THAT(client.requests()[1].system, HasSubstr("Outputs will be a JSON object"));
  EXPECT_EQ(out.prediction.at("answer"), "4");

  FnClient broken([](const llm::LlmRequest&) { return TextResponse("no structure at all"); });
  auto runner2 = Runner(&broken, pipe);
  RunOutcome bad = runner2->Run(*program, testing::MakeExample("What is 1 + 2?", 3), RunConfig{});
  EXPECT_EQ(bad.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status.message()), HasSubstr("adapter parse failure"));
  EXPECT_EQ(bad.parse_failures, 2);
}

TEST(ProgramRunner, BadProgramAndSteps) {
  auto pipe = LoadOrDie(kQaPipeline);
  ProgramOptions options;
  options.steps = {"nope"};
  auto bad = BuildProgram(*pipe, options);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("\"nope\""));
  auto pipe2 = LoadOrDie(R"(workflow:
  name: x
  steps:
    - name: s
      type: claude
      predictor: tree_of_thought
      prompt: [{type: static, content: "hi"}]
)");
  auto kind = BuildProgram(*pipe2);
  EXPECT_EQ(kind.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(kind.status().message()), HasSubstr("step \"s\""));
}

TEST(Metrics, ExactContainsF1NumericRegexJson) {
  Example ex;
  ex.input = ojson{{"q", "x"}};
  ex.expected_output =
      ojson{{"answer", "The Eiffel Tower"}, {"n", 41}, {"severity", "high"}, {"tags", {"a"}}};
  MetricContext ctx;
  auto score = [&](MetricSpec spec, ojson prediction) {
    auto m = CreateMetric(spec);
    EXPECT_TRUE(m.ok()) << m.status();
    auto v = (*m)->Score(ex, prediction, ctx);
    EXPECT_TRUE(v.ok()) << v.status();
    return *v;
  };
  MetricSpec em = ExactAnswer();
  EXPECT_EQ(score(em, ojson{{"answer", "eiffel tower!"}}).score, 1.0);
  EXPECT_EQ(score(em, ojson{{"answer", "tower"}}).score, 0.0);
  em.normalization = Normalization::kNone;
  EXPECT_EQ(score(em, ojson{{"answer", "eiffel tower!"}}).score, 0.0);
  MetricSpec contains = ExactAnswer();
  contains.kind = MetricSpec::Kind::kContains;
  EXPECT_TRUE(score(contains, ojson{{"answer", "It is the Eiffel Tower in Paris."}}).passed);
  MetricSpec f1 = ExactAnswer();
  f1.kind = MetricSpec::Kind::kTokenF1;
  MetricValue f = score(f1, ojson{{"answer", "eiffel tower paris"}});
  EXPECT_NEAR(f.score, 0.8, 1e-9);
  EXPECT_FALSE(f.passed);
  f1.pass_threshold = 0.5;
  EXPECT_TRUE(score(f1, ojson{{"answer", "eiffel tower paris"}}).passed);
  EXPECT_NEAR(TokenF1("", ""), 1.0, 1e-9);
  MetricSpec num;
  num.kind = MetricSpec::Kind::kNumeric;
  num.field = "n";
  num.abs_tolerance = 0.5;
  EXPECT_EQ(score(num, ojson{{"n", "The result is 41.3 units"}}).score, 1.0);
  EXPECT_EQ(score(num, ojson{{"n", "42"}}).score, 0.0);
  num.rel_tolerance = 0.05;
  EXPECT_EQ(score(num, ojson{{"n", "42"}}).score, 1.0);
  MetricSpec re;
  re.kind = MetricSpec::Kind::kRegex;
  re.field = "answer";
  re.pattern = "(?i)eiffel";
  EXPECT_EQ(score(re, ojson{{"answer", "EIFFEL"}}).score, 1.0);
  MetricSpec jf;
  jf.kind = MetricSpec::Kind::kJsonFields;
  jf.fields = {"severity", "tags", "n"};
  jf.weights = {{"severity", 2}};
  // Fields found inside a JSON object held by a text output.
  MetricValue partial =
      score(jf, ojson{{"answer", "{\"severity\": \"high\", \"tags\": [\"a\"], \"n\": 40}"}});
  EXPECT_NEAR(partial.score, 3.0 / 4.0, 1e-9);
  EXPECT_FALSE(partial.passed);
  EXPECT_THAT(partial.feedback, HasSubstr("n"));
  EXPECT_TRUE(score(jf, ojson{{"severity", "high"}, {"tags", {"a"}}, {"n", "41"}}).passed);
  // Missing prediction field scores 0 without an error.
  EXPECT_EQ(score(ExactAnswer(), ojson{{"other", 1}}).score, 0.0);
  // A scalar expected_output and a list of accepted answers.
  Example scalar;
  scalar.expected_output = ojson{"Paris", "paris, france"};
  auto m = CreateMetric(ExactAnswer());
  EXPECT_EQ((*m)->Score(scalar, ojson{{"answer", "Paris, France"}}, ctx)->score, 1.0);
}

TEST(Metrics, CompositeAndBadSpecs) {
  Example ex;
  ex.expected_output = ojson{{"answer", "yes"}};
  MetricSpec a = ExactAnswer();
  MetricSpec b = ExactAnswer();
  b.kind = MetricSpec::Kind::kRegex;
  b.pattern = "^n";
  MetricSpec all;
  all.kind = MetricSpec::Kind::kComposite;
  all.mode = MetricSpec::CompositeMode::kAll;
  all.parts = {a, b};
  MetricSpec any = all;
  any.mode = MetricSpec::CompositeMode::kAny;
  MetricSpec mean = all;
  mean.mode = MetricSpec::CompositeMode::kWeightedMean;
  mean.part_weights = {3, 1};
  MetricContext ctx;
  const ojson pred{{"answer", "yes"}};
  EXPECT_EQ((*CreateMetric(all))->Score(ex, pred, ctx)->score, 0.0);
  EXPECT_EQ((*CreateMetric(any))->Score(ex, pred, ctx)->score, 1.0);
  EXPECT_NEAR((*CreateMetric(mean))->Score(ex, pred, ctx)->score, 0.75, 1e-9);

  MetricSpec empty;
  empty.kind = MetricSpec::Kind::kComposite;
  EXPECT_THAT(std::string(CreateMetric(empty).status().message()),
              HasSubstr("metric.composite.parts"));
  MetricSpec badre = ExactAnswer();
  badre.kind = MetricSpec::Kind::kRegex;
  badre.pattern = "(";
  EXPECT_EQ(CreateMetric(badre).status().code(), absl::StatusCode::kInvalidArgument);
  MetricSpec nofield;
  EXPECT_THAT(std::string(CreateMetric(nofield).status().message()),
              HasSubstr("field is required"));
  MetricSpec judge;
  judge.kind = MetricSpec::Kind::kLlmJudge;
  judge.rubric = "r";
  EXPECT_THAT(std::string(CreateMetric(judge).status().message()),
              HasSubstr("needs an LLM client"));

  auto parsed = MetricSpecFromJson(ojson::parse(R"({"composite": {"mode": "MODE_ALL", "parts": [
      {"exact_match": {"field": "answer", "normalization": "NORMALIZATION_TRIM"}},
      {"numeric": {"field": "n", "abs_tolerance": 1}}]}, "pass_threshold": 1})"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->parts[0].normalization, Normalization::kTrim);
  EXPECT_THAT(MetricFields(*parsed), ElementsAre("answer", "n"));
  auto unknown = MetricSpecFromJson(ojson::parse(R"({"bleu": {}})"));
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("metric.bleu"));
  auto two = MetricSpecFromJson(ojson::parse(R"({"regex": {"field": "a"}})"));
  EXPECT_THAT(std::string(two.status().message()), HasSubstr("metric.regex.pattern"));
}

TEST(Metrics, LlmJudgeParsesRobustlyAndNeedsAllCriteria) {
  MetricSpec spec;
  spec.kind = MetricSpec::Kind::kLlmJudge;
  spec.rubric = "Refactoring plans must be feasible and good.";
  spec.criteria = {"feasibility", "quality"};
  std::atomic<int> mode{0};
  FnClient client([&](const llm::LlmRequest& r) -> absl::StatusOr<llm::LlmResponse> {
    EXPECT_THAT(r.system, HasSubstr("`feasibility` (float): Score from 0 to 10 for: feasibility"));
    switch (mode.load()) {
      case 0:
        return TextResponse(
            "[[ ## reasoning ## ]]\nfine\n\n[[ ## feasibility ## ]]\n8\n\n[[ ## quality ## "
            "]]\n7.5\n\n[[ ## completed ## ]]");
      case 1:
        return TextResponse(
            "Result: {\"feasibility\": 9, \"quality\": \"6\", \"reasoning\": \"meh\"}");
      default:
        return TextResponse("Feasibility: 8/10. Quality score - 9 out of 10.");
    }
  });
  auto m = CreateMetric(spec, &client);
  ASSERT_TRUE(m.ok()) << m.status();
  Example ex;
  ex.input = ojson{{"code", "x = 1"}};
  MetricContext ctx;
  auto v0 = (*m)->Score(ex, ojson{{"plan", "p"}}, ctx);
  ASSERT_TRUE(v0.ok());
  EXPECT_TRUE(v0->passed);
  EXPECT_THAT(v0->feedback, HasSubstr("feasibility=8"));
  mode = 1;
  EXPECT_FALSE((*m)->Score(ex, ojson{{"plan", "p"}}, ctx)->passed);
  mode = 2;
  EXPECT_TRUE((*m)->Score(ex, ojson{{"plan", "p"}}, ctx)->passed);
  EXPECT_EQ(ParseJudgeScores("I'd rate it 6.5 overall", {"score"}).at("score"), 6.5);
  EXPECT_TRUE(ParseJudgeScores("no numbers", {"score"}).empty());
}

TEST(Evaluate, PercentErrorsAndParallelEqualsSequential) {
  auto pipe = LoadOrDie(kQaPipeline);
  std::atomic<int> counter{0};
  FnClient client([&](const llm::LlmRequest& r) -> absl::StatusOr<llm::LlmResponse> {
    ++counter;
    if (absl::StrContains(r.messages.back().content, "What is 3 + 2?")) {
      return absl::UnavailableError("provider down");
    }
    std::vector<testing::ChatTurn> turns;
    for (const auto& m : r.messages) turns.push_back({m.role, m.content});
    return TextResponse(FakeDspyModel::Answer(r.system, turns, r.json_response));
  });
  auto runner = Runner(&client, pipe);
  auto program = BuildProgram(*pipe);
  ASSERT_TRUE(program.ok());
  auto metric = CreateMetric(ExactAnswer());
  std::vector<Example> devset = ArithmeticExamples(7, '+', 0);
  // Program with demos so that the fake answers right.
  Program with = LabeledFewShotCompile(*program, ArithmeticExamples(4, '+', 50), {}, 0, "answer");
  EvaluateOptions eo;
  eo.num_threads = 1;
  auto seq = Evaluate(*runner, **metric, with, devset, RunConfig{}, eo);
  ASSERT_TRUE(seq.ok()) << seq.status();
  eo.num_threads = 8;
  auto par = Evaluate(*runner, **metric, with, devset, RunConfig{}, eo);
  ASSERT_TRUE(par.ok()) << par.status();
  EXPECT_EQ(seq->score, par->score);
  ASSERT_EQ(seq->results.size(), 7u);
  for (size_t i = 0; i < 7; ++i) EXPECT_EQ(seq->results[i].score, par->results[i].score);
  // 7 examples, the one with "3 + 2" fails: 6/7 = 85.71%.
  EXPECT_EQ(seq->errors, 1);
  EXPECT_DOUBLE_EQ(seq->score, 85.71);
  EXPECT_TRUE(seq->results[0].error);
  eo.max_errors = 1;
  auto aborted = Evaluate(*runner, **metric, with, devset, RunConfig{}, eo);
  EXPECT_EQ(aborted.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(std::string(aborted.status().message()), HasSubstr("provider down"));
  // A cancelled token stops the evaluation with CANCELLED.
  CancellationToken cancel;
  cancel.Cancel("user");
  RunConfig rc;
  rc.cancel = &cancel;
  EXPECT_EQ(Evaluate(*runner, **metric, with, devset, rc, eo).status().code(),
            absl::StatusCode::kCancelled);
}

TEST(SaveFormat, GoldenJsonAndRoundTrip) {
  auto pipe = LoadOrDie(R"(workflow:
  name: qa
  steps:
    - name: solve
      type: claude
      predictor: chain_of_thought
      signature: "question -> answer: int"
      signature_descriptions: {answer: "The number."}
      prompt: [{type: static, content: "Answer it."}]
    - name: check-it
      type: claude
      signature: "answer -> verdict"
      prompt: [{type: static, content: "Check."}]
)");
  auto program = BuildProgram(*pipe);
  ASSERT_TRUE(program.ok()) << program.status();
  program->predictors[0].demos = {
      ojson{{"augmented", true}, {"question", "1+1?"}, {"reasoning", "add"}, {"answer", 2}},
      ojson{{"question", "2+2?"}, {"answer", 4}}};
  program->predictors[1].signature.instructions = "Check the answer.";
  program->predictors[1].prefix_overrides["verdict"] = "Verdict (yes/no):";
  const std::string json = ToDspyJson(*program, "qa", ojson{{"seed", 0}});
  EXPECT_EQ(json, R"({
  "solve.predict": {
    "traces": [],
    "train": [],
    "demos": [
      {
        "augmented": true,
        "question": "1+1?",
        "reasoning": "add",
        "answer": 2
      },
      {
        "question": "2+2?",
        "answer": 4
      }
    ],
    "signature": {
      "instructions": "Answer it.",
      "fields": [
        {
          "prefix": "Question:",
          "description": "${question}"
        },
        {
          "prefix": "Reasoning:",
          "description": "${reasoning}"
        },
        {
          "prefix": "Answer:",
          "description": "The number."
        }
      ]
    },
    "lm": null
  },
  "check_it": {
    "traces": [],
    "train": [],
    "demos": [],
    "signature": {
      "instructions": "Check the answer.",
      "fields": [
        {
          "prefix": "Answer:",
          "description": "${answer}"
        },
        {
          "prefix": "Verdict (yes/no):",
          "description": "${verdict}"
        }
      ]
    },
    "lm": null
  },
  "metadata": {
    "dependency_versions": {
      "python": "3.13",
      "dspy": "3.3.1",
      "cloudpickle": "3.1"
    },
    "elexirion": {
      "pipeline": "qa",
      "predictors": {
        "solve.predict": {
          "step": "solve",
          "step_type": "claude",
          "predictor": "chain_of_thought",
          "signature": "question -> answer: int"
        },
        "check_it": {
          "step": "check-it",
          "step_type": "claude",
          "predictor": "predict",
          "signature": "answer -> verdict"
        }
      },
      "seed": 0
    }
  }
}
)");
  auto fresh = BuildProgram(*pipe);
  auto loaded = ApplyDspyJson(*fresh, json);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->StateJson(), program->StateJson());
  EXPECT_EQ(ApplyDspyJson(*fresh, "{}").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(DspyModuleSource(*program),
              HasSubstr("self.solve = dspy.ChainOfThought('question -> answer: int')"));
}

TEST(Tpe, StartupIsRandomThenExploitsTheBest) {
  TpeSampler sampler(3, {{"a", 4}, {"b", 3}});
  std::map<std::string, int> first = sampler.Suggest();
  EXPECT_LT(first["a"], 4);
  // History: only a=2 scores well.
  for (int i = 0; i < 30; ++i) {
    std::map<std::string, int> p = {{"a", i % 4}, {"b", i % 3}};
    sampler.AddTrial(p, p["a"] == 2 ? 90.0 : 10.0);
  }
  int hits = 0;
  for (int i = 0; i < 20; ++i) {
    std::map<std::string, int> s = sampler.Suggest();
    hits += s["a"] == 2 ? 1 : 0;
    sampler.AddTrial(s, s["a"] == 2 ? 90.0 : 10.0);
  }
  EXPECT_GE(hits, 15);
  // Same seed and history, same suggestions.
  TpeSampler x(5, {{"a", 6}});
  TpeSampler y(5, {{"a", 6}});
  for (int i = 0; i < 12; ++i) {
    auto sx = x.Suggest();
    auto sy = y.Suggest();
    EXPECT_EQ(sx, sy);
    x.AddTrial(sx, sx["a"] * 1.0);
    y.AddTrial(sy, sy["a"] * 1.0);
  }
}

TEST(Registry, NamesAliasesAndParameters) {
  OptimizerRegistry& r = OptimizerRegistry::Global();
  EXPECT_THAT(r.Names(), ElementsAre("bootstrap_few_shot", "bootstrap_random_search", "copro",
                                     "gepa", "labeled_few_shot", "miprov2", "simba"));
  EXPECT_TRUE(r.Create("BootstrapRS", ojson::object()).ok());
  EXPECT_TRUE(r.Create("MIPROv2", ojson{{"auto", "AUTO_MEDIUM"}}).ok());
  EXPECT_TRUE(r.Create("GEPA", ojson{{"auto", "light"}}).ok());
  EXPECT_TRUE(r.Create("SIMBA", ojson::object()).ok());
  EXPECT_THAT(std::string(r.Create("opro", ojson::object()).status().message()),
              HasSubstr("unknown optimizer \"opro\""));
  EXPECT_THAT(std::string(r.Create("copro", ojson{{"breadth", 1}}).status().message()),
              HasSubstr("optimizer.copro.breadth"));
  EXPECT_THAT(
      std::string(r.Create("bootstrap_few_shot", ojson{{"max_rounds", "x"}}).status().message()),
      HasSubstr("optimizer.bootstrap_few_shot.max_rounds"));
  EXPECT_THAT(std::string(r.Create("labeled_few_shot", ojson{{"kk", 1}}).status().message()),
              HasSubstr("optimizer.labeled_few_shot.kk: unknown parameter"));
  EXPECT_THAT(std::string(r.Create("miprov2", ojson{{"num_trials", 5}}).status().message()),
              HasSubstr("cannot be set when auto"));
  EXPECT_THAT(
      std::string(
          r.Create("miprov2", ojson{{"auto", "off"}, {"num_candidates", 3}}).status().message()),
      HasSubstr("num_trials: required"));
  EXPECT_EQ(r.Register("copro", nullptr).code(), absl::StatusCode::kAlreadyExists);
}

TEST(LabeledFewShot, SamplesLikeDspy) {
  auto pipe = LoadOrDie(kQaPipeline);
  auto program = BuildProgram(*pipe);
  std::vector<Example> train = ArithmeticExamples(50, '+', 0);
  Program p = LabeledFewShotCompile(*program, train, {16, true}, 0, "answer");
  ASSERT_EQ(p.predictors[0].demos.size(), 16u);
  // random.Random(0).sample(range(50), 16)[0] == 24.
  EXPECT_EQ(p.predictors[0].demos[0], FlatRecord(train[24], "answer"));
  Program q = LabeledFewShotCompile(*program, train, {3, false}, 0, "answer");
  EXPECT_EQ(q.predictors[0].demos[2], FlatRecord(train[2], "answer"));
}

// BootstrapFewShot with a scripted model: parallel and sequential runs decide identically.
TEST(BootstrapFewShot, ParallelEqualsSequentialAndHonorsQuota) {
  auto pipe = LoadOrDie(kQaPipeline);
  FnClient client(ModelFn());
  auto runner = Runner(&client, pipe);
  auto student = BuildProgram(*pipe);
  auto metric = CreateMetric(ExactAnswer());
  std::vector<Example> train = ArithmeticExamples(30, '+', 0);
  auto compile = [&](int threads) {
    OptimizerContext::Options o;
    o.runner = runner.get();
    o.metric = metric->get();
    o.trainset = train;
    o.num_threads = threads;
    OptimizerContext ctx(o);
    ctx.set_primary_output("answer");
    BootstrapOptions b;
    b.max_bootstrapped_demos = 4;
    b.max_labeled_demos = 6;
    auto p = BootstrapFewShotCompile(*student, train, b, ctx, "test");
    EXPECT_TRUE(p.ok()) << p.status();
    return *p;
  };
  Program seq = compile(1);
  Program par = compile(16);
  EXPECT_EQ(seq.StateJson(), par.StateJson());
  ASSERT_EQ(seq.predictors[0].demos.size(), 6u);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(seq.predictors[0].demos[i].value("augmented", false));
  EXPECT_FALSE(seq.predictors[0].demos[4].contains("augmented"));
  // The bootstrapped traces are the first four trainset examples, in order.
  EXPECT_EQ(seq.predictors[0].demos[0].at("question"), train[0].input.at("question"));
  EXPECT_EQ(seq.predictors[0].demos[3].at("question"), train[3].input.at("question"));
}

}  // namespace
}  // namespace elexirion::optimizer
