// Golden tests of the DSPy wire formats (ChatAdapter / JSONAdapter) and the Python-compatible
// helpers they rely on (PyRandom, Python text rendering, field types).
#include "server/optimizer/adapter.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/optimizer/field_types.h"
#include "server/optimizer/py_format.h"
#include "server/optimizer/py_random.h"
#include "server/optimizer/text_util.h"

namespace elexirion::optimizer {
namespace {

using ::testing::HasSubstr;

AdapterField F(const std::string& name, const std::string& type = "str",
               const std::string& desc = "") {
  auto t = ParseFieldType(type);
  EXPECT_TRUE(t.ok()) << t.status();
  return AdapterField{name, *t, desc};
}

AdapterSignature Qa(const std::string& instructions = "Answer the question.") {
  AdapterSignature s;
  s.inputs = {F("question")};
  s.outputs = {F("answer")};
  s.instructions = instructions;
  return s;
}

// Expected strings are DSPy 3.3.1's (tests/adapters/test_chat_adapter.py, test_json_adapter.py).
TEST(ChatAdapterGolden, SimpleSignature) {
  FormattedPrompt p = FormatPrompt(AdapterKind::kChat, Qa(), {},
                                   ojson{{"question", "What is the capital of France?"}});
  EXPECT_EQ(p.system,
            "Your input fields are:\n"
            "1. `question` (str):\n"
            "Your output fields are:\n"
            "1. `answer` (str):\n"
            "All interactions will be structured in the following way, with the appropriate values "
            "filled in.\n"
            "\n"
            "[[ ## question ## ]]\n"
            "{question}\n"
            "\n"
            "[[ ## answer ## ]]\n"
            "{answer}\n"
            "\n"
            "[[ ## completed ## ]]\n"
            "In adhering to this structure, your objective is: \n"
            "        Answer the question.");
  ASSERT_EQ(p.messages.size(), 1u);
  EXPECT_EQ(p.messages[0].role, "user");
  EXPECT_EQ(
      p.messages[0].content,
      "[[ ## question ## ]]\n"
      "What is the capital of France?\n"
      "\n"
      "Respond with the corresponding output fields, starting with the field `[[ ## answer ## ]]`, "
      "and then ending with the marker for `[[ ## completed ## ]]`.");
}

TEST(ChatAdapterGolden, DemoAndTypedOutputs) {
  AdapterSignature s;
  s.inputs = {F("question")};
  s.outputs = {F("answers", "list[str]"), F("scores", "list[float]")};
  s.instructions = "Answer the question with multiple answers and scores";
  const std::vector<ojson> demos = {
      ojson{{"question", "Q1"}, {"answers", {"A1", "A2"}}, {"scores", {0.1, 0.9}}}};
  FormattedPrompt p = FormatPrompt(AdapterKind::kChat, s, demos, ojson{{"question", "Q2"}});
  EXPECT_EQ(p.system,
            "Your input fields are:\n"
            "1. `question` (str):\n"
            "Your output fields are:\n"
            "1. `answers` (list[str]): \n"
            "2. `scores` (list[float]):\n"
            "All interactions will be structured in the following way, with the appropriate values "
            "filled in.\n"
            "\n"
            "[[ ## question ## ]]\n"
            "{question}\n"
            "\n"
            "[[ ## answers ## ]]\n"
            "{answers}        # note: the value you produce must adhere to the JSON schema: "
            "{\"type\": \"array\", \"items\": {\"type\": \"string\"}}\n"
            "\n"
            "[[ ## scores ## ]]\n"
            "{scores}        # note: the value you produce must adhere to the JSON schema: "
            "{\"type\": \"array\", \"items\": {\"type\": \"number\"}}\n"
            "\n"
            "[[ ## completed ## ]]\n"
            "In adhering to this structure, your objective is: \n"
            "        Answer the question with multiple answers and scores");
  ASSERT_EQ(p.messages.size(), 3u);
  EXPECT_EQ(p.messages[0].content, "[[ ## question ## ]]\nQ1");
  EXPECT_EQ(p.messages[1].role, "assistant");
  EXPECT_EQ(p.messages[1].content,
            "[[ ## answers ## ]]\n[\"A1\", \"A2\"]\n\n[[ ## scores ## ]]\n[0.1, 0.9]\n\n"
            "[[ ## completed ## ]]\n");
  EXPECT_EQ(
      p.messages[2].content,
      "[[ ## question ## ]]\nQ2\n\n"
      "Respond with the corresponding output fields, starting with the field `[[ ## answers ## ]]` "
      "(must be formatted as a valid Python list[str]), then `[[ ## scores ## ]]` (must be "
      "formatted as a valid Python list[float]), and then ending with the marker for "
      "`[[ ## completed ## ]]`.");
}

TEST(ChatAdapterGolden, IncompleteDemosFirstAndDropped) {
  AdapterSignature s;
  s.inputs = {F("question")};
  s.outputs = {F("reasoning"), F("answer")};
  s.instructions = "Line one.\n    Line two.";
  const std::vector<ojson> demos = {
      ojson{{"augmented", true}, {"question", "Q1"}, {"reasoning", "R1"}, {"answer", "A1"}},
      ojson{{"question", "Q2"}, {"answer", "A2"}},  // no reasoning: incomplete
      ojson{{"question", "Q3"}},                    // no output: dropped
  };
  FormattedPrompt p = FormatPrompt(AdapterKind::kChat, s, demos, ojson{{"question", "Q4"}});
  EXPECT_THAT(p.system, HasSubstr("your objective is: \n        Line one.\n            Line two."));
  ASSERT_EQ(p.messages.size(), 5u);
  EXPECT_EQ(
      p.messages[0].content,
      "This is an example of the task, though some input or output fields are not supplied.\n\n"
      "[[ ## question ## ]]\nQ2");
  EXPECT_EQ(p.messages[1].content,
            "[[ ## reasoning ## ]]\nNot supplied for this particular example. \n\n"
            "[[ ## answer ## ]]\nA2\n\n[[ ## completed ## ]]\n");
  EXPECT_EQ(p.messages[2].content, "[[ ## question ## ]]\nQ1");
  EXPECT_EQ(p.messages[3].content,
            "[[ ## reasoning ## ]]\nR1\n\n[[ ## answer ## ]]\nA1\n\n[[ ## completed ## ]]\n");
}

TEST(ChatAdapterGolden, ValueFormatting) {
  const FieldType str = *ParseFieldType("str");
  EXPECT_EQ(FormatFieldValue(str, ojson::array()), "N/A");
  EXPECT_EQ(FormatFieldValue(str, ojson{"one"}), "«one»");
  EXPECT_EQ(FormatFieldValue(str, ojson{"a", "b\nc"}), "[1] «a»\n[2] «««\n    b\n    c\n»»»");
  EXPECT_EQ(FormatFieldValue(str, ojson{{"k", 1}, {"v", {true, nullptr}}}),
            "{\"k\": 1, \"v\": [true, null]}");
  EXPECT_EQ(FormatFieldValue(str, ojson(true)), "True");
  EXPECT_EQ(FormatFieldValue(str, ojson(nullptr)), "None");
  EXPECT_EQ(FormatFieldValue(str, ojson(3.0)), "3.0");
  EXPECT_EQ(FormatFieldValue(str, ojson(42)), "42");
  const FieldType list = *ParseFieldType("list[int]");
  EXPECT_EQ(FormatFieldValue(list, ojson{1, 2}), "[1, 2]");
}

TEST(ChatAdapterParse, SectionsFirstWinsAndTypes) {
  AdapterSignature s;
  s.inputs = {F("question")};
  s.outputs = {F("reasoning"), F("answer", "int"), F("tags", "list[str]"), F("ok", "bool")};
  auto parsed = ParseCompletion(AdapterKind::kChat, s,
                                "preamble\n"
                                "[[ ## reasoning ## ]] inline start\nmore\n\n"
                                "  [[ ## answer ## ]]\n 42 \n"
                                "[[ ## tags ## ]]\n['x', \"y\",]\n"
                                "[[ ## ok ## ]]\nTrue\n"
                                "[[ ## answer ## ]]\n7\n"
                                "[[ ## completed ## ]]\n");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->dump(),
            R"({"reasoning":"inline start\nmore","answer":42,"tags":["x","y"],"ok":true})");
}

TEST(ChatAdapterParse, MissingAndBadFieldsFail) {
  AdapterSignature s = Qa();
  auto missing = ParseCompletion(AdapterKind::kChat, s, "The answer is Paris.");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("adapter parse failure"));
  EXPECT_FALSE(ParseCompletion(AdapterKind::kChat, s, "  \n").ok());
  AdapterSignature typed;
  typed.inputs = {F("question")};
  typed.outputs = {F("n", "int")};
  EXPECT_FALSE(ParseCompletion(AdapterKind::kChat, typed, "[[ ## n ## ]]\nforty").ok());
  AdapterSignature optional;
  optional.inputs = {F("question")};
  optional.outputs = {F("answer"), F("note", "Optional[str]")};
  auto ok = ParseCompletion(AdapterKind::kChat, optional, "[[ ## answer ## ]]\nx");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_TRUE(ok->at("note").is_null());
}

TEST(ChatAdapterParse, LiteralMatching) {
  AdapterSignature s;
  s.inputs = {F("text")};
  s.outputs = {F("label", "Literal['positive', 'negative']")};
  EXPECT_EQ(s.outputs[0].type.name, "Literal['positive', 'negative']");
  auto a = ParseCompletion(AdapterKind::kChat, s, "[[ ## label ## ]]\nLiteral['negative']");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->at("label"), "negative");
  EXPECT_FALSE(ParseCompletion(AdapterKind::kChat, s, "[[ ## label ## ]]\nneutral").ok());
  EXPECT_THAT(FormatSystemMessage(AdapterKind::kChat, s),
              HasSubstr("{label}        # note: the value you produce must exactly match (no extra "
                        "characters) one of: positive; negative"));
}

TEST(JsonAdapterGolden, SimpleSignature) {
  AdapterSignature s = Qa("Given the fields `question`, produce the fields `answer`.");
  FormattedPrompt p = FormatPrompt(AdapterKind::kJson, s, {},
                                   ojson{{"question", "What is the capital of France?"}});
  EXPECT_EQ(p.system,
            "Your input fields are:\n"
            "1. `question` (str):\n"
            "Your output fields are:\n"
            "1. `answer` (str):\n"
            "All interactions will be structured in the following way, with the appropriate values "
            "filled in.\n"
            "\n"
            "Inputs will have the following structure:\n"
            "\n"
            "[[ ## question ## ]]\n"
            "{question}\n"
            "\n"
            "Outputs will be a JSON object with the following fields.\n"
            "\n"
            "{\n"
            "  \"answer\": \"{answer}\"\n"
            "}\n"
            "In adhering to this structure, your objective is: \n"
            "        Given the fields `question`, produce the fields `answer`.");
  ASSERT_EQ(p.messages.size(), 1u);
  EXPECT_EQ(p.messages[0].content,
            "[[ ## question ## ]]\nWhat is the capital of France?\n\n"
            "Respond with a JSON object in the following order of fields: `answer`.");
}

TEST(JsonAdapterGolden, DemoAndTypedOutput) {
  AdapterSignature s;
  s.inputs = {F("question")};
  s.outputs = {F("answer"), F("confidence", "float")};
  s.instructions = "Given the fields `question`, produce the fields `answer`, `confidence`.";
  FormattedPrompt p = FormatPrompt(
      AdapterKind::kJson, s, {ojson{{"question", "Q1"}, {"answer", "A1"}, {"confidence", 0.9}}},
      ojson{{"question", "Q2"}});
  EXPECT_THAT(p.system,
              HasSubstr("{\n  \"answer\": \"{answer}\",\n  \"confidence\": \"{confidence}        "
                        "# note: the value you produce must be a single float value\"\n}\n"));
  ASSERT_EQ(p.messages.size(), 3u);
  EXPECT_EQ(p.messages[1].content, "{\n  \"answer\": \"A1\",\n  \"confidence\": 0.9\n}");
  EXPECT_EQ(
      p.messages[2].content,
      "[[ ## question ## ]]\nQ2\n\nRespond with a JSON object in the following order of fields: "
      "`answer`, then `confidence` (must be formatted as a valid Python float).");
}

TEST(JsonAdapterParse, ObjectInTextAndCoercion) {
  AdapterSignature s;
  s.inputs = {F("question")};
  s.outputs = {F("answer"), F("confidence", "float")};
  auto a = ParseCompletion(
      AdapterKind::kJson, s,
      "Sure! ```json\n{\"answer\": 42, \"confidence\": \"0.5\", \"extra\": 1}\n``` done");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->dump(), R"({"answer":"42","confidence":0.5})");
  EXPECT_FALSE(ParseCompletion(AdapterKind::kJson, s, "no json here").ok());
  EXPECT_FALSE(ParseCompletion(AdapterKind::kJson, s, "{\"answer\": \"x\"}").ok());
}

TEST(FieldTypes, NamesAndSchemas) {
  EXPECT_EQ(ParseFieldType("dict[str, int]")->name, "dict[str, int]");
  EXPECT_EQ(PyJsonDumps(JsonSchema(*ParseFieldType("dict[str, int]"))),
            "{\"type\": \"object\", \"additionalProperties\": {\"type\": \"integer\"}}");
  EXPECT_EQ(ParseFieldType("Optional[int]")->name, "Union[int, NoneType]");
  EXPECT_EQ(PyJsonDumps(JsonSchema(*ParseFieldType("Optional[int]"))),
            "{\"anyOf\": [{\"type\": \"integer\"}, {\"type\": \"null\"}]}");
  EXPECT_EQ(FieldPlaceholder("ok", *ParseFieldType("bool"), true),
            "{ok}        # note: the value you produce must be True or False");
  EXPECT_EQ(FieldPlaceholder("ok", *ParseFieldType("bool"), false), "{ok}");
  EXPECT_FALSE(ParseFieldType("list[str").ok());
}

TEST(PyFormat, ReprAndFloats) {
  EXPECT_EQ(PyFloatRepr(0.1), "0.1");
  EXPECT_EQ(PyFloatRepr(100.0), "100.0");
  EXPECT_EQ(PyFloatRepr(1e16), "1e+16");
  EXPECT_EQ(PyFloatRepr(1e15), "1000000000000000.0");
  EXPECT_EQ(PyFloatRepr(0.0001), "0.0001");
  EXPECT_EQ(PyFloatRepr(0.00001), "1e-05");
  EXPECT_EQ(PyFloatRepr(66.67), "66.67");
  EXPECT_EQ(PyRepr(ojson{{"q", "it's"}, {"n", nullptr}, {"b", false}}),
            "{'q': \"it's\", 'n': None, 'b': False}");
  EXPECT_EQ(PyJsonDumps(ojson{{"a", {1, 2}}, {"b", ojson::object()}}, 2),
            "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {}\n}");
  EXPECT_EQ(PyJsonDumps(ojson("é\"\n\x01")), "\"é\\\"\\n\\u0001\"");
  auto lenient = LenientJsonLoads("{'a': (1, 2,), \"b\": True, 'c': None,}");
  ASSERT_TRUE(lenient.has_value());
  EXPECT_EQ(lenient->dump(), R"({"a":[1,2],"b":true,"c":null})");
}

TEST(TextUtil, PythonSemantics) {
  EXPECT_EQ(PyDedent("  a\n    b\n\n  c"), "a\n  b\n\nc");
  EXPECT_EQ(PySplitLines("a\r\nb\n\nc\n").size(), 4u);
  EXPECT_EQ(NormalizeText("The,  Eiffel  Tower!"), "eiffel tower");
  EXPECT_EQ(InferPrefix("next_tool_name"), "Next Tool Name:");
  EXPECT_EQ(InferPrefix("question"), "Question:");
  EXPECT_EQ(InferPrefix("HTMLParser"), "HTML Parser:");
  EXPECT_EQ(InferPrefix("text2number"), "Text 2 Number:");
  EXPECT_EQ(StripProposalPrefix("**Proposed Instruction: \"Do it.\""), "Do it.");
  EXPECT_EQ(StripProposalPrefix("Just do it: now"), "now");
  EXPECT_EQ(StripProposalPrefix("No label here."), "No label here.");
}

// Golden values computed with CPython 3.11's random module.
TEST(PyRandom, MatchesCPython) {
  PyRandom r(0);
  EXPECT_EQ(r.GetRandBits(32), 3626764237u);
  EXPECT_EQ(r.GetRandBits(32), 1654615998u);
  EXPECT_EQ(r.GetRandBits(32), 3255389356u);
  EXPECT_DOUBLE_EQ(PyRandom(0).Random(), 0.8444218515250481);
  std::vector<int> x = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  PyRandom(0).Shuffle(x);
  EXPECT_EQ(x, (std::vector<int>{7, 8, 1, 5, 3, 4, 2, 0, 9, 6}));
  EXPECT_EQ(PyRandom(0).SampleIndices(50, 16),
            (std::vector<size_t>{24, 48, 26, 2, 16, 32, 31, 25, 19, 30, 22, 37, 13, 44, 8, 18}));
  EXPECT_EQ(
      PyRandom(0).SampleIndices(100, 35),
      (std::vector<size_t>{49, 97, 53, 5,  33, 65, 62, 51, 38, 61, 45, 74, 27, 64, 17, 36, 85, 12,
                           79, 32, 68, 77, 18, 39, 82, 9,  42, 60, 71, 75, 89, 55, 40, 26, 90}));
  EXPECT_EQ(PyRandom(0).SampleIndices(5, 3), (std::vector<size_t>{3, 4, 0}));
  EXPECT_EQ(PyRandom(0).RandInt(1, 4), 4);
  EXPECT_EQ(PyRandom(1).RandInt(1, 4), 2);
  EXPECT_EQ(PyRandom(5).RandInt(1, 4), 3);
  EXPECT_EQ(PyRandom(42).RandInt(1, 4), 1);
  PyRandom big(123456789012345);
  EXPECT_EQ(big.GetRandBits(32), 2896848117u);
  EXPECT_EQ(big.GetRandBits(64), 5392492017017287384ull);
  EXPECT_EQ(big.RandInt(0, 1000000000), 440495521);
  EXPECT_EQ(PyRandom(-7).GetRandBits(32), 1390851128u);
  PyRandom nine(9);
  std::vector<size_t> choices;
  for (int i = 0; i < 5; ++i) choices.push_back(nine.ChoiceIndex(6));
  EXPECT_EQ(choices, (std::vector<size_t>{3, 4, 2, 2, 1}));
  EXPECT_EQ(nine.RandInt(0, 1000000000), 199871617);
  EXPECT_EQ(PyRandom(int64_t{1} << 40 | 5).GetRandBits(32), 2166296868u);
}

}  // namespace
}  // namespace elexirion::optimizer
