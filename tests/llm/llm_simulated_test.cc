// The simulated model: deterministic, and right only with enough relevant demos or a cue.
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

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

// A code review signature with three outputs, demos as (code, {field: value}) pairs.
using Outputs = std::map<std::string, std::string>;
LlmRequest ReviewRequest(const std::vector<std::pair<std::string, Outputs>>& demos,
                         const std::string& code) {
  const std::vector<std::string> fields = {"severity", "findings", "recommendations"};
  LlmRequest r;
  r.system =
      "Your input fields are:\n1. `code` (str)\nYour output fields are:\n1. `severity` (str)\n"
      "2. `findings` (str)\n3. `recommendations` (str)\nReview the code.";
  auto question = [&](const std::string& c) {
    return absl::StrCat("[[ ## code ## ]]\n", c,
                        "\n\nRespond with the corresponding output fields, starting with the field "
                        "`[[ ## severity ## ]]`, then `[[ ## findings ## ]]`, then "
                        "`[[ ## recommendations ## ]]`, and then ending with the marker for "
                        "`[[ ## completed ## ]]`.");
  };
  for (const auto& [c, outputs] : demos) {
    r.messages.push_back({"user", question(c)});
    std::string reply;
    for (const std::string& f : fields) {
      auto it = outputs.find(f);
      if (it != outputs.end()) absl::StrAppend(&reply, "[[ ## ", f, " ## ]]\n", it->second, "\n\n");
    }
    r.messages.push_back({"assistant", absl::StrCat(reply, "[[ ## completed ## ]]")});
  }
  r.messages.push_back({"user", question(code)});
  return r;
}

const Outputs kSql = {{"severity", "critical"},
                      {"findings", "sql injection"},
                      {"recommendations", "Use parameterized queries."}};
const Outputs kSqlTerse = {{"severity", "critical"}, {"findings", "sql injection in update"}};
const Outputs kPassword = {{"severity", "high"},
                           {"findings", "hardcoded password"},
                           {"recommendations", "Move the password to a secret store."}};

TEST(SimulatedTest, EachOutputFieldFromTheMatchingFieldOfTheDemos) {
  const std::vector<std::pair<std::string, Outputs>> demos = {
      {"db_password = 'admin123'", kPassword},
      {"cursor.execute('SELECT * FROM users WHERE id=' + user_id)", kSql},
      {"cursor.execute('UPDATE users SET x=' + value)", kSqlTerse}};
  SimulatedDecision d = SimulateCompletion(
      ReviewRequest(demos, "cursor.execute('SELECT name FROM users WHERE id=' + uid)"),
      SimulatedSettings{});
  EXPECT_EQ(d.rule, "nearest_demo");
  EXPECT_TRUE(d.knows);
  EXPECT_EQ(d.answer, "critical");
  EXPECT_EQ(d.field_values["severity"], "critical");
  EXPECT_EQ(d.field_values["findings"], "sql injection");
  EXPECT_EQ(d.field_values["recommendations"], "Use parameterized queries.");
  EXPECT_THAT(d.text, HasSubstr("[[ ## findings ## ]]\nsql injection\n\n"));
  EXPECT_THAT(d.text, HasSubstr("[[ ## recommendations ## ]]\nUse parameterized queries.\n\n"));
  // Deterministic.
  EXPECT_EQ(SimulateCompletion(
                ReviewRequest(demos, "cursor.execute('SELECT name FROM users WHERE id=' + uid)"),
                SimulatedSettings{})
                .text,
            d.text);

  // The nearest demo lacks recommendations: they come from the most relevant demo that has
  // them and gave the same answer (not from the password demo).
  d = SimulateCompletion(ReviewRequest(demos, "cursor.execute('UPDATE users SET y=' + other)"),
                         SimulatedSettings{});
  EXPECT_EQ(d.field_values["findings"], "sql injection in update");
  EXPECT_EQ(d.field_values["recommendations"], "Use parameterized queries.");
  // ...and never from a demo that disagrees: without an agreeing one, the answer itself.
  d = SimulateCompletion(ReviewRequest({demos[0], demos[2], demos[2]},
                                       "cursor.execute('UPDATE users SET y=' + other)"),
                         SimulatedSettings{});
  EXPECT_EQ(d.field_values["findings"], "sql injection in update");
  EXPECT_EQ(d.field_values["recommendations"], "critical");

  // Not knowing (one relevant demo): the wrong answer's own demo fills every field, so the
  // analysis is wrong but consistent.
  d = SimulateCompletion(ReviewRequest({{"cursor.execute('SELECT 1 FROM users')", kSql},
                                        {"db_password = 'admin123'", kPassword}},
                                       "cursor.execute('DELETE FROM t')"),
                         SimulatedSettings{});
  EXPECT_FALSE(d.knows);
  EXPECT_EQ(d.field_values["severity"], "high");
  EXPECT_EQ(d.field_values["findings"], "hardcoded password");
  EXPECT_EQ(d.field_values["recommendations"], "Move the password to a secret store.");
}

TEST(SimulatedTest, FieldNoDemoFillsGetsTheAnswerAndJsonHasEveryField) {
  // No demos and no cue: every field is "unknown", as before.
  SimulatedDecision none = SimulateCompletion(ReviewRequest({}, "print(x)"), SimulatedSettings{});
  EXPECT_EQ(none.rule, "none");
  EXPECT_EQ(none.field_values["findings"], "unknown");
  EXPECT_EQ(none.field_values["recommendations"], "unknown");

  LlmRequest r = ReviewRequest({{"cursor.execute('SELECT * FROM users WHERE id=' + user_id)", kSql},
                                {"cursor.execute('UPDATE users SET x=' + value)", kSqlTerse}},
                               "cursor.execute('SELECT name FROM users WHERE id=' + uid)");
  r.json_response = true;
  nlohmann::json j = nlohmann::json::parse(SimulateCompletion(r, SimulatedSettings{}).text);
  EXPECT_EQ(j["severity"], "critical");
  EXPECT_EQ(j["findings"], "sql injection");
  EXPECT_EQ(j["recommendations"], "Use parameterized queries.");
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
