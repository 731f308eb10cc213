// The simulated model: deterministic, and right only with enough relevant demos or a cue.
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/llm/simulated_provider.h"
#include "tests/llm/llm_test_util.h"

namespace elexirion::llm {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A prompt as DSPy's ChatAdapter lays it out.
const char kChatSystem[] =
    "Your input fields are:\n1. `question` (str)\nYour output fields are:\n"
    "1. `reasoning` (str)\n2. `answer` (str)\n"
    "All interactions will be structured in the following way, with the appropriate values "
    "filled in.\n\n[[ ## question ## ]]\n{question}\n\n[[ ## reasoning ## ]]\n{reasoning}\n\n"
    "[[ ## answer ## ]]\n{answer}\n\n[[ ## completed ## ]]\n"
    "In adhering to this structure, your objective is: \n        Given the fields `question`, "
    "produce the fields `answer`.";

std::string ChatQuestion(const std::string& q) {
  return absl::StrCat("[[ ## question ## ]]\n", q,
                      "\n\nRespond with the corresponding output fields, starting with the field "
                      "`[[ ## reasoning ## ]]`, then `[[ ## answer ## ]]`, and then ending with "
                      "the marker for `[[ ## completed ## ]]`.");
}

std::string ChatAnswer(const std::string& a) {
  return absl::StrCat("[[ ## reasoning ## ]]\nAdd them.\n\n[[ ## answer ## ]]\n", a,
                      "\n\n[[ ## completed ## ]]");
}

LlmRequest ChatRequest(const std::vector<std::pair<std::string, std::string>>& demos,
                       const std::string& question, const std::string& instruction_extra = "") {
  LlmRequest r;
  r.system = absl::StrCat(kChatSystem, instruction_extra);
  for (const auto& [q, a] : demos) {
    r.messages.push_back({"user", ChatQuestion(q)});
    r.messages.push_back({"assistant", ChatAnswer(a)});
  }
  r.messages.push_back({"user", ChatQuestion(question)});
  return r;
}

std::string AnswerField(const std::string& text) {
  size_t start = text.find("[[ ## answer ## ]]\n");
  if (start == std::string::npos) return "";
  start += 19;
  return text.substr(start, text.find("\n\n", start) - start);
}

TEST(SimulatedTest, ChatAdapterNeedsTwoRelevantDemos) {
  SimulatedSettings settings;
  SimulatedDecision none = SimulateCompletion(ChatRequest({}, "What is 12 plus 30?"), settings);
  EXPECT_EQ(none.rule, "arithmetic");
  EXPECT_EQ(none.true_answer, "42");
  EXPECT_FALSE(none.knows);
  EXPECT_NE(AnswerField(none.text), "42");
  EXPECT_THAT(none.output_fields, ::testing::ElementsAre("reasoning", "answer"));
  EXPECT_THAT(none.text, HasSubstr("[[ ## reasoning ## ]]\n"));
  EXPECT_THAT(none.text, HasSubstr("[[ ## completed ## ]]"));

  SimulatedDecision one = SimulateCompletion(
      ChatRequest({{"What is 3 plus 4?", "7"}}, "What is 12 plus 30?"), settings);
  EXPECT_EQ(one.demos, 1);
  EXPECT_FALSE(one.knows);

  SimulatedDecision two =
      SimulateCompletion(ChatRequest({{"What is 3 plus 4?", "7"}, {"What is 10 plus 5?", "15"}},
                                     "What is 12 plus 30?"),
                         settings);
  EXPECT_EQ(two.demos, 2);
  EXPECT_EQ(two.relevant_demos, 2);
  EXPECT_TRUE(two.knows);
  EXPECT_EQ(two.query, "What is 12 plus 30?");
  EXPECT_EQ(AnswerField(two.text), "42");
}

TEST(SimulatedTest, CueWordInTheInstructionIsEnough) {
  SimulatedDecision d = SimulateCompletion(
      ChatRequest({}, "What is 6 times 7?", " Think step by step."), SimulatedSettings{});
  EXPECT_TRUE(d.cue);
  EXPECT_EQ(AnswerField(d.text), "42");
  // The cue inside the query itself does not count: it is not the instruction.
  LlmRequest plain;
  plain.messages = {{"user", "Input: 6 times 7, step by step\nOutput:"}};
  EXPECT_FALSE(SimulateCompletion(plain, SimulatedSettings{}).cue);
  // A configured cue.
  SimulatedSettings custom;
  custom.cue_words = {"be precise"};
  plain.system = "Be precise.";
  EXPECT_TRUE(SimulateCompletion(plain, custom).knows);
  EXPECT_EQ(SimulateCompletion(plain, custom).text, "42");
}

TEST(SimulatedTest, PlainInputOutputDemos) {
  LlmRequest r;
  r.system = "Answer the question.";
  r.messages = {{"user", "Input: 2 + 2\nOutput: 4\n\nInput: 9 - 3\nOutput:"}};
  SimulatedDecision one = SimulateCompletion(r, SimulatedSettings{});
  EXPECT_EQ(one.query, "9 - 3");
  EXPECT_EQ(one.relevant_demos, 1);
  EXPECT_NE(one.text, "6");
  r.messages = {
      {"user", "Input: 2 + 2\nOutput: 4\n\nInput: 5 * 5\nOutput: 25\n\nInput: 9 - 3\nOutput:"}};
  SimulatedDecision two = SimulateCompletion(r, SimulatedSettings{});
  EXPECT_EQ(two.text, "6");
  // Demos as message pairs.
  r.messages = {{"user", "Input: 2 + 2"},
                {"assistant", "4"},
                {"user", "Input: 1 + 1"},
                {"assistant", "2"},
                {"user", "Input: 9 / 4"}};
  EXPECT_EQ(SimulateCompletion(r, SimulatedSettings{}).text, "2.25");
}

TEST(SimulatedTest, NearestDemoLabelsAndCopy) {
  const std::string demos =
      "Input: my invoice is wrong\nOutput: billing\n\n"
      "Input: invoice charged twice\nOutput: billing\n\n"
      "Input: package never arrived\nOutput: shipping\n\n";
  LlmRequest r;
  r.system = "Route the support ticket.";
  r.messages = {{"user", demos + "Input: the invoice amount is incorrect\nOutput:"}};
  SimulatedDecision d = SimulateCompletion(r, SimulatedSettings{});
  EXPECT_EQ(d.rule, "nearest_demo");
  EXPECT_EQ(d.relevant_demos, 2);
  EXPECT_EQ(d.text, "billing");
  // Only one relevant demo: a plausible wrong label.
  r.messages = {{"user",
                 "Input: my invoice is wrong\nOutput: billing\n\nInput: package never arrived\n"
                 "Output: shipping\n\nInput: invoice amount incorrect\nOutput:"}};
  d = SimulateCompletion(r, SimulatedSettings{});
  EXPECT_EQ(d.relevant_demos, 1);
  EXPECT_EQ(d.text, "shipping");
  // The exact input among the demos is copied.
  r.messages = {{"user", demos + "Input: package never arrived\nOutput:"}};
  d = SimulateCompletion(r, SimulatedSettings{});
  EXPECT_EQ(d.rule, "copy");
  EXPECT_EQ(d.text, "shipping");
  // Nothing to go on.
  LlmRequest bare;
  bare.messages = {{"user", "Tell me a story."}};
  EXPECT_EQ(SimulateCompletion(bare, SimulatedSettings{}).text, "unknown");
}

TEST(SimulatedTest, SentimentByLexicon) {
  LlmRequest r;
  r.system = "Classify the sentiment of the review as positive, negative or neutral.";
  r.messages = {{"user", "Input: I love this great phone\nOutput:"}};
  EXPECT_EQ(SimulateCompletion(r, SimulatedSettings{}).text, "negative");  // no demos, no cue
  r.system += " Think step by step.";
  EXPECT_EQ(SimulateCompletion(r, SimulatedSettings{}).text, "positive");
  r.system = "Label it.";
  r.messages = {{"user",
                 "Input: awful phone\nOutput: Negative\n\nInput: great phone\nOutput: Positive\n\n"
                 "Input: what a terrible phone, I hate it\nOutput:"}};
  SimulatedDecision d = SimulateCompletion(r, SimulatedSettings{});
  EXPECT_EQ(d.rule, "sentiment");
  EXPECT_EQ(d.text, "Negative");  // spelled like the demos
}

TEST(SimulatedTest, DeterministicWithRolloutNoiseOnlyAboveZeroTemperature) {
  LlmRequest r =
      ChatRequest({{"What is 3 plus 4?", "7"}, {"What is 1 plus 1?", "2"}}, "What is 20 plus 22?");
  const std::string base = SimulateCompletion(r, SimulatedSettings{}).text;
  EXPECT_EQ(AnswerField(base), "42");
  for (int i = 0; i < 20; ++i) {
    LlmRequest x = r;
    x.rollout_id = absl::StrCat("r", i);
    x.temperature = 0.0;
    EXPECT_EQ(SimulateCompletion(x, SimulatedSettings{}).text, base);
  }
  int wrong = 0;
  for (int i = 0; i < 200; ++i) {
    LlmRequest x = r;
    x.rollout_id = absl::StrCat("r", i);
    x.temperature = 1.0;
    std::string a = SimulateCompletion(x, SimulatedSettings{}).text;
    EXPECT_EQ(SimulateCompletion(x, SimulatedSettings{}).text, a);  // repeatable
    if (AnswerField(a) != "42") ++wrong;
  }
  EXPECT_GT(wrong, 10);  // ~25 % flip at temperature 1
  EXPECT_LT(wrong, 100);
}

TEST(SimulatedTest, JsonResponse) {
  LlmRequest r = ChatRequest({}, "What is 1 plus 2?", " Go step by step.");
  r.json_response = true;
  nlohmann::json j = nlohmann::json::parse(SimulateCompletion(r, SimulatedSettings{}).text);
  EXPECT_EQ(j["answer"], "3");
  EXPECT_TRUE(j.contains("reasoning"));
}

TEST(SimulatedTest, ThroughTheRouterMarkedSimulatedAndCancellable) {
  testing::RouterSetup setup;
  setup.yaml = "providers: {simulated: {latency: 30s}, quick: {kind: simulated}}";
  auto router = testing::MakeRouter(setup);
  ASSERT_NE(router, nullptr);
  LlmRequest r = ChatRequest({}, "What is 2 plus 2?", " step by step");
  r.provider = "quick";
  absl::StatusOr<LlmResponse> a = router->Complete(r, {});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(a->simulated);
  EXPECT_EQ(a->provider, "quick");
  EXPECT_EQ(a->model, "simulated-1");
  EXPECT_EQ(a->finish_reason, "stop");
  EXPECT_GT(a->input_tokens, 0);
  EXPECT_GT(a->output_tokens, 0);
  EXPECT_EQ(a->cost_usd, 0);
  EXPECT_THAT(a->provider_request_id, ::testing::StartsWith("sim-"));
  EXPECT_EQ(AnswerField(a->text), "4");
  absl::StatusOr<LlmResponse> b = router->Complete(r, {});
  EXPECT_EQ(b->text, a->text);
  EXPECT_EQ(b->provider_request_id, a->provider_request_id);

  CancellationToken token;
  CallOptions options;
  options.cancel = &token;
  r.provider = "";  // default instance: "simulated", 30 s latency
  absl::StatusOr<LlmResponse> result;
  std::thread caller([&] { result = router->Complete(r, options); });
  absl::SleepFor(absl::Milliseconds(100));
  const absl::Time cancelled_at = absl::Now();
  token.Cancel();
  caller.join();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled);
  EXPECT_LT(absl::Now() - cancelled_at, absl::Seconds(1));
}

}  // namespace
}  // namespace elexirion::llm
