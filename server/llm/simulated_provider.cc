#include "server/llm/simulated_provider.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "server/llm/errors.h"
#include "server/llm/json_util.h"

namespace elexirion::llm {
namespace {

// FNV-1a: stable across platforms and runs (std::hash is not).
uint64_t Fnv(absl::string_view s, uint64_t h = 1469598103934665603ULL) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

struct Field {
  std::string name;
  std::string value;
};

struct Demo {
  std::string input;
  std::string answer;  // the primary output field's value
  // Every output field the demo fills (reasoning fields excluded), by name; empty for plain
  // Input/Output demos, whose only output is `answer`.
  std::map<std::string, std::string> outputs;
};

constexpr absl::string_view kOpen = "[[ ## ";
constexpr absl::string_view kClose = " ## ]]";

// A line "[[ ## name ## ]]..." -> name.
std::optional<std::string> MarkerName(absl::string_view line) {
  if (!absl::StartsWith(line, kOpen)) return std::nullopt;
  size_t end = line.find(kClose, kOpen.size());
  if (end == absl::string_view::npos) return std::nullopt;
  return std::string(absl::StripAsciiWhitespace(line.substr(kOpen.size(), end - kOpen.size())));
}

// Removes the paragraph(s) that reference markers ("Respond with ... `[[ ## x ## ]]`") from
// a field value; they are instructions, not data.
std::string CutReferences(absl::string_view value) {
  size_t ref = value.find("`[[ ## ");
  if (ref == absl::string_view::npos) return std::string(absl::StripAsciiWhitespace(value));
  size_t para = value.rfind("\n\n", ref);
  size_t cut = para == absl::string_view::npos ? 0 : para;
  return std::string(absl::StripAsciiWhitespace(value.substr(0, cut)));
}

// Fields of a text; values keep inner newlines.
std::vector<Field> ParseFields(absl::string_view text) {
  std::vector<Field> fields;
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  Field* current = nullptr;
  std::string buffer;
  auto flush = [&] {
    if (current != nullptr) current->value = CutReferences(buffer);
    buffer.clear();
  };
  for (absl::string_view line : lines) {
    if (std::optional<std::string> name = MarkerName(line); name.has_value()) {
      flush();
      fields.push_back(Field{*name, ""});
      current = &fields.back();
      buffer = std::string(line.substr(line.find(kClose) + kClose.size()));
      continue;
    }
    if (current != nullptr) absl::StrAppend(&buffer, "\n", line);
  }
  flush();
  return fields;
}

bool IsPlaceholder(const std::string& value) {
  return value.empty() ||
         (value.front() == '{' && value.back() == '}' && value.find(' ') == std::string::npos);
}

bool IsReasoningField(const std::string& name) {
  return name == "reasoning" || name == "rationale";
}

// Names referenced as `[[ ## x ## ]]` in text, in order.
std::vector<std::string> ReferencedFields(absl::string_view text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while ((pos = text.find("`[[ ## ", pos)) != absl::string_view::npos) {
    size_t start = pos + 7;
    size_t end = text.find(kClose, start);
    if (end == absl::string_view::npos) break;
    std::string name(absl::StripAsciiWhitespace(text.substr(start, end - start)));
    if (name != "completed" && std::find(out.begin(), out.end(), name) == out.end()) {
      out.push_back(name);
    }
    pos = end;
  }
  return out;
}

// "Your output fields are:\n1. `answer` (str): ..." -> {"answer"}.
std::vector<std::string> DeclaredOutputFields(absl::string_view system) {
  std::vector<std::string> out;
  size_t pos = system.find("Your output fields are:");
  if (pos == absl::string_view::npos) return out;
  std::vector<absl::string_view> lines = absl::StrSplit(system.substr(pos), '\n');
  for (size_t i = 1; i < lines.size(); ++i) {
    absl::string_view line = absl::StripAsciiWhitespace(lines[i]);
    if (line.empty() || !absl::ascii_isdigit(line[0])) break;
    size_t a = line.find('`');
    size_t b = a == absl::string_view::npos ? a : line.find('`', a + 1);
    if (b != absl::string_view::npos) out.emplace_back(line.substr(a + 1, b - a - 1));
  }
  return out;
}

const std::set<std::string>& StopWords() {
  static const auto* words = new std::set<std::string>{
      "the",   "and",    "for",      "are",    "but",  "not",   "you",   "all",   "any",   "can",
      "was",   "one",    "our",      "out",    "has",  "had",   "how",   "its",   "who",   "did",
      "yes",   "this",   "that",     "with",   "what", "from",  "have",  "they",  "them",  "then",
      "than",  "when",   "where",    "which",  "will", "would", "there", "their", "about", "into",
      "your",  "been",   "were",     "also",   "just", "some",  "more",  "very",  "such",  "only",
      "input", "output", "question", "answer", "text"};
  return *words;
}

std::set<std::string> Tokens(absl::string_view text) {
  std::set<std::string> out;
  std::string cur;
  auto push = [&] {
    if (cur.size() >= 3 && !StopWords().contains(cur)) out.insert(cur);
    cur.clear();
  };
  for (char c : text) {
    if (absl::ascii_isalnum(c)) {
      cur.push_back(absl::ascii_tolower(c));
    } else {
      push();
    }
  }
  push();
  return out;
}

int Overlap(const std::set<std::string>& a, const std::set<std::string>& b) {
  int n = 0;
  for (const auto& t : a) n += b.contains(t) ? 1 : 0;
  return n;
}

std::string FormatNumber(double v) {
  if (std::fabs(v - std::round(v)) < 1e-9 && std::fabs(v) < 1e15) {
    return absl::StrCat(static_cast<int64_t>(std::llround(v)));
  }
  std::string s = absl::StrFormat("%.4f", v);
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

struct Arithmetic {
  std::string expression;
  double result = 0;
};

std::optional<Arithmetic> SolveArithmetic(const std::string& text) {
  static const auto* re = new std::regex(
      R"((-?\d+(?:\.\d+)?)\s*(\+|-|\*|x|×|/|plus|minus|times|multiplied by|divided by)\s*(-?\d+(?:\.\d+)?))",
      std::regex::icase);
  std::smatch m;
  if (!std::regex_search(text, m, *re)) return std::nullopt;
  double a = std::stod(m[1].str());
  double b = std::stod(m[3].str());
  std::string op = absl::AsciiStrToLower(m[2].str());
  Arithmetic out;
  out.expression = m[0].str();
  if (op == "+" || op == "plus") {
    out.result = a + b;
  } else if (op == "-" || op == "minus") {
    out.result = a - b;
  } else if (op == "*" || op == "x" || op == "×" || op == "times" || op == "multiplied by") {
    out.result = a * b;
  } else {
    if (b == 0) return std::nullopt;
    out.result = a / b;
  }
  return out;
}

const std::set<std::string>& PositiveWords() {
  static const auto* w = new std::set<std::string>{
      "good",   "great",    "excellent", "love",  "loved",   "wonderful", "amazing",    "fantastic",
      "happy",  "best",     "enjoyed",   "enjoy", "perfect", "nice",      "delightful", "brilliant",
      "superb", "pleasant", "awesome",   "like",  "liked",   "recommend"};
  return *w;
}
const std::set<std::string>& NegativeWords() {
  static const auto* w = new std::set<std::string>{
      "bad",    "terrible", "awful",         "hate",         "hated", "horrible", "worst",
      "boring", "poor",     "disappointing", "disappointed", "sad",   "ugly",     "broken",
      "waste",  "annoying", "mediocre",      "dull",         "refund"};
  return *w;
}

// Lower-case words of any length (the lexicon has 3+ letter words only, but "sad" etc.).
std::vector<std::string> Words(absl::string_view text) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : text) {
    if (absl::ascii_isalpha(c)) {
      cur.push_back(absl::ascii_tolower(c));
    } else if (!cur.empty()) {
      out.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

struct ParsedPrompt {
  bool chat_style = false;
  std::string query;
  std::vector<std::string> query_values;
  std::vector<Demo> demos;
  std::vector<std::string> output_fields;
  std::string primary;  // the output field the decision rules answer (chat style)
};

ParsedPrompt ParseChatStyle(const LlmRequest& r, size_t last_user) {
  ParsedPrompt p;
  p.chat_style = true;
  const std::string& last = r.messages[last_user].content;
  std::vector<Field> query_fields = ParseFields(last);
  // Output fields.
  p.output_fields = ReferencedFields(last);
  if (p.output_fields.empty()) {
    for (size_t i = 0; i < last_user; ++i) {
      if (r.messages[i].role != "assistant") continue;
      for (const Field& f : ParseFields(r.messages[i].content)) {
        if (f.name != "completed" && std::find(p.output_fields.begin(), p.output_fields.end(),
                                               f.name) == p.output_fields.end()) {
          p.output_fields.push_back(f.name);
        }
      }
    }
  }
  if (p.output_fields.empty()) p.output_fields = DeclaredOutputFields(r.system);
  if (p.output_fields.empty()) p.output_fields = {"answer"};
  auto is_output = [&](const std::string& name) {
    return std::find(p.output_fields.begin(), p.output_fields.end(), name) != p.output_fields.end();
  };
  std::string primary = p.output_fields.front();
  for (const std::string& f : p.output_fields) {
    if (!IsReasoningField(f)) {
      primary = f;
      break;
    }
  }
  std::set<std::string> input_names;
  for (const Field& f : query_fields) {
    if (f.name == "completed" || is_output(f.name)) continue;
    input_names.insert(f.name);
    if (!IsPlaceholder(f.value)) p.query_values.push_back(f.value);
  }
  p.query = absl::StrJoin(p.query_values, "\n");

  p.primary = primary;
  auto answer_of = [&](const std::vector<Field>& fields) -> std::string {
    std::string any;
    for (const Field& f : fields) {
      if (IsPlaceholder(f.value) || !is_output(f.name)) continue;
      if (f.name == primary) return f.value;
      if (any.empty() && !IsReasoningField(f.name)) any = f.value;
    }
    return any;
  };
  auto outputs_of = [&](const std::vector<Field>& fields) {
    std::map<std::string, std::string> out;
    for (const Field& f : fields) {
      if (!IsPlaceholder(f.value) && is_output(f.name) && !IsReasoningField(f.name)) {
        out.emplace(f.name, f.value);
      }
    }
    return out;
  };
  auto input_of = [&](const std::vector<Field>& fields) {
    std::vector<std::string> values;
    for (const Field& f : fields) {
      if (input_names.contains(f.name) && !IsPlaceholder(f.value)) values.push_back(f.value);
    }
    return absl::StrJoin(values, "\n");
  };
  // Inline demos in the system text and earlier messages.
  auto inline_demos = [&](const std::vector<Field>& fields) {
    std::vector<Field> in, out;
    auto push = [&] {
      Demo d{input_of(in), answer_of(out), outputs_of(out)};
      if (!d.input.empty() && !d.answer.empty()) p.demos.push_back(std::move(d));
      in.clear();
      out.clear();
    };
    for (const Field& f : fields) {
      if (input_names.contains(f.name)) {
        if (!out.empty()) push();
        in.push_back(f);
      } else if (is_output(f.name)) {
        out.push_back(f);
      }
    }
    push();
  };
  inline_demos(ParseFields(r.system));
  for (size_t i = 0; i < last_user; ++i) {
    const Message& m = r.messages[i];
    if (m.role == "assistant") continue;
    std::vector<Field> fields = ParseFields(m.content);
    if (i + 1 < last_user && r.messages[i + 1].role == "assistant") {
      std::vector<Field> reply = ParseFields(r.messages[i + 1].content);
      Demo d{input_of(fields), answer_of(reply), outputs_of(reply)};
      if (!d.input.empty() && !d.answer.empty()) {
        p.demos.push_back(std::move(d));
        continue;
      }
    }
    inline_demos(fields);
  }
  return p;
}

// Value after "Input:"/"Output:" at the start of a line, case-insensitively.
std::optional<absl::string_view> Labeled(absl::string_view line, absl::string_view label) {
  absl::string_view s = absl::StripLeadingAsciiWhitespace(line);
  if (s.size() < label.size() || !absl::EqualsIgnoreCase(s.substr(0, label.size()), label)) {
    return std::nullopt;
  }
  return absl::StripAsciiWhitespace(s.substr(label.size()));
}

ParsedPrompt ParsePlainStyle(const LlmRequest& r, size_t last_user) {
  ParsedPrompt p;
  struct Item {
    std::string input;
    std::optional<std::string> output;
  };
  std::vector<Item> items;
  // 0 = outside, 1 = in an Input value, 2 = in an Output value.
  auto scan = [&](absl::string_view text) {
    int state = 0;
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      if (auto in = Labeled(line, "input:"); in.has_value()) {
        items.push_back(Item{std::string(*in), std::nullopt});
        state = 1;
      } else if (auto out = Labeled(line, "output:"); out.has_value() && !items.empty()) {
        items.back().output = std::string(*out);
        state = 2;
      } else if (absl::StripAsciiWhitespace(line).empty()) {
        state = 0;
      } else if (state == 1) {
        absl::StrAppend(&items.back().input, "\n", absl::StripAsciiWhitespace(line));
      } else if (state == 2) {
        absl::StrAppend(&*items.back().output, "\n", absl::StripAsciiWhitespace(line));
      }
    }
  };
  scan(r.system);
  for (size_t i = 0; i <= last_user; ++i) {
    const Message& m = r.messages[i];
    if (m.role == "assistant") {
      // The reply to a user message that ended with an open Input.
      if (!items.empty() && (!items.back().output.has_value() || items.back().output->empty())) {
        items.back().output = std::string(absl::StripAsciiWhitespace(m.content));
      }
      continue;
    }
    scan(m.content);
  }
  for (size_t i = 0; i < items.size(); ++i) {
    const Item& it = items[i];
    bool open = !it.output.has_value() || it.output->empty();
    if (!open) {
      p.demos.push_back(Demo{it.input, *it.output, {}});
    } else if (i + 1 == items.size()) {
      p.query = it.input;
      p.query_values = {it.input};
    }
  }
  if (p.query.empty()) {
    p.query = r.messages[last_user].content;
    p.query_values = {p.query};
  }
  return p;
}

std::string Opposite(const std::string& label) {
  std::string l = absl::AsciiStrToLower(label);
  if (l == "positive") return "negative";
  return "positive";
}

// Spells `label` like the demos do ("Positive" if the demos say so).
std::string LikeDemos(const std::string& label, const std::vector<Demo>& demos) {
  for (const Demo& d : demos) {
    if (absl::EqualsIgnoreCase(d.answer, label)) return d.answer;
  }
  return label;
}

// The value of a secondary output field, so every field reads like the demos rather than
// repeating the primary answer: the field of the demo the answer came from; else of the most
// relevant demo (most shared content tokens, earliest on ties) that fills the field and gave
// the same answer; else the answer itself (never a field of a demo that disagrees).
std::string SecondaryFieldValue(const std::string& field, const std::string& answer,
                                const Demo* source, const std::vector<Demo>& demos,
                                const std::set<std::string>& query_tokens) {
  if (source != nullptr) {
    auto it = source->outputs.find(field);
    if (it != source->outputs.end()) return it->second;
  }
  const std::string* best = nullptr;
  int best_overlap = -1;
  for (const Demo& demo : demos) {
    auto it = demo.outputs.find(field);
    if (it == demo.outputs.end() || demo.answer != answer) continue;
    const int o = Overlap(query_tokens, Tokens(demo.input));
    if (o > best_overlap) {
      best_overlap = o;
      best = &it->second;
    }
  }
  return best != nullptr ? *best : answer;
}

}  // namespace

SimulatedDecision SimulateCompletion(const LlmRequest& r, const SimulatedSettings& settings) {
  SimulatedDecision d;
  std::string all = r.system;
  for (const Message& m : r.messages) absl::StrAppend(&all, "\n", m.role, ":", m.content);

  // The last user message; without one, the system text is the query.
  size_t last_user = r.messages.size();
  for (size_t i = r.messages.size(); i-- > 0;) {
    if (r.messages[i].role != "assistant") {
      last_user = i;
      break;
    }
  }
  ParsedPrompt p;
  if (last_user == r.messages.size()) {
    p.query = r.system;
    p.query_values = {r.system};
  } else {
    bool chat = false;
    for (absl::string_view line : absl::StrSplit(r.messages[last_user].content, '\n')) {
      if (MarkerName(line).has_value()) chat = true;
    }
    p = chat ? ParseChatStyle(r, last_user) : ParsePlainStyle(r, last_user);
  }
  d.query = p.query;
  d.demos = static_cast<int>(p.demos.size());
  if (p.chat_style) d.output_fields = p.output_fields;

  // Instruction: everything but the query's own values.
  std::string instruction = r.system;
  if (last_user < r.messages.size()) {
    std::string last = r.messages[last_user].content;
    for (const std::string& v : p.query_values) {
      size_t pos = last.find(v);
      if (!v.empty() && pos != std::string::npos) last.erase(pos, v.size());
    }
    absl::StrAppend(&instruction, "\n", last);
  }
  const std::string instruction_lc = absl::AsciiStrToLower(instruction);
  for (const std::string& cue : settings.cue_words) {
    if (!cue.empty() && absl::StrContains(instruction_lc, absl::AsciiStrToLower(cue))) d.cue = true;
  }

  const std::set<std::string> query_tokens = Tokens(p.query);
  const std::optional<Arithmetic> arithmetic = SolveArithmetic(p.query);
  for (const Demo& demo : p.demos) {
    bool relevant = Overlap(query_tokens, Tokens(demo.input)) > 0 ||
                    (arithmetic.has_value() && SolveArithmetic(demo.input).has_value());
    if (relevant) ++d.relevant_demos;
  }

  const uint64_t qh = Fnv(p.query);
  std::string wrong;
  std::string explanation;
  // The demos the true and the wrong answer come from, when they come from one.
  const Demo* true_source = nullptr;
  const Demo* wrong_source = nullptr;
  const Demo* copy = nullptr;
  for (const Demo& demo : p.demos) {
    if (absl::StripAsciiWhitespace(demo.input) == absl::StripAsciiWhitespace(p.query)) {
      copy = &demo;
      break;
    }
  }
  bool sentiment_task = absl::StrContains(absl::AsciiStrToLower(all), "sentiment");
  if (!p.demos.empty() && !sentiment_task) {
    sentiment_task = std::all_of(p.demos.begin(), p.demos.end(), [](const Demo& demo) {
      std::string l = absl::AsciiStrToLower(demo.answer);
      return l == "positive" || l == "negative" || l == "neutral";
    });
  }
  if (copy != nullptr) {
    d.rule = "copy";
    d.true_answer = copy->answer;
    true_source = copy;
    explanation = "This input appeared in an example.";
  } else if (arithmetic.has_value()) {
    d.rule = "arithmetic";
    d.true_answer = FormatNumber(arithmetic->result);
    wrong = FormatNumber(arithmetic->result + static_cast<double>(1 + qh % 9));
    explanation = absl::StrCat("Compute ", arithmetic->expression, ".");
  } else if (sentiment_task) {
    int pos = 0, neg = 0;
    for (const std::string& w : Words(p.query)) {
      pos += PositiveWords().contains(w) ? 1 : 0;
      neg += NegativeWords().contains(w) ? 1 : 0;
    }
    d.rule = "sentiment";
    d.true_answer = LikeDemos(pos > neg ? "positive" : neg > pos ? "negative" : "neutral", p.demos);
    wrong = LikeDemos(Opposite(d.true_answer), p.demos);
    explanation = absl::StrFormat("The text has %d positive and %d negative words.", pos, neg);
  } else if (!p.demos.empty()) {
    const Demo* best = &p.demos.front();
    int best_overlap = -1;
    for (const Demo& demo : p.demos) {
      int o = Overlap(query_tokens, Tokens(demo.input));
      if (o > best_overlap) {
        best_overlap = o;
        best = &demo;
      }
    }
    d.rule = "nearest_demo";
    d.true_answer = best->answer;
    true_source = best;
    wrong = "unknown";
    for (const Demo& demo : p.demos) {
      if (demo.answer != best->answer) {
        wrong = demo.answer;
        wrong_source = &demo;
        break;
      }
    }
    explanation = "Similar examples suggest this answer.";
  } else {
    d.rule = "none";
    d.true_answer = "unknown";
    wrong = "unknown";
    explanation = "Nothing in the prompt says how to answer.";
  }

  d.knows = copy != nullptr || d.cue || d.relevant_demos >= settings.min_relevant_demos;
  if (copy == nullptr && r.temperature.has_value() && *r.temperature > 0) {
    uint64_t h =
        Fnv(absl::StrCat("\x1f", r.rollout_id, "\x1f", FormatNumber(*r.temperature)), Fnv(all));
    double u = static_cast<double>(h >> 11) / static_cast<double>(1ULL << 53);
    if (u < std::min(0.3, 0.25 * *r.temperature)) d.knows = !d.knows;
  }
  d.answer = d.knows ? d.true_answer : wrong;
  const std::string reasoning = d.knows ? absl::StrCat("Let me think step by step. ", explanation)
                                        : std::string("The answer seems obvious.");

  if (p.chat_style) {
    const Demo* source = d.knows ? true_source : wrong_source;
    for (const std::string& f : p.output_fields) {
      d.field_values[f] = IsReasoningField(f) ? reasoning
                          : f == p.primary
                              ? d.answer
                              : SecondaryFieldValue(f, d.answer, source, p.demos, query_tokens);
    }
  }

  if (r.json_response) {
    nlohmann::json j = nlohmann::json::object();
    if (p.chat_style) {
      for (const std::string& f : p.output_fields) j[f] = d.field_values[f];
    } else {
      j["answer"] = d.answer;
    }
    d.text = json_util::Dump(j);
  } else if (p.chat_style) {
    for (const std::string& f : p.output_fields) {
      absl::StrAppend(&d.text, "[[ ## ", f, " ## ]]\n", d.field_values[f], "\n\n");
    }
    absl::StrAppend(&d.text, "[[ ## completed ## ]]");
  } else {
    d.text = d.answer;
  }
  return d;
}

absl::StatusOr<LlmResponse> SimulatedProvider::Call(const LlmRequest& request,
                                                    const AttemptOptions& options) {
  if (settings_.latency > absl::ZeroDuration()) {
    // Sleep in slices so a cancellation is honoured within 50 ms.
    absl::Time end = absl::Now() + std::min(settings_.latency, options.timeout);
    while (absl::Now() < end) {
      if (options.cancel != nullptr && options.cancel->IsCancelled()) {
        return CancelledError(absl::StrCat("cancelled: ", options.cancel->reason()));
      }
      absl::SleepFor(std::min(absl::Milliseconds(50), end - absl::Now()));
    }
    if (settings_.latency > options.timeout) {
      return RetryableError("simulated: timed out");
    }
  }
  if (options.cancel != nullptr && options.cancel->IsCancelled()) {
    return CancelledError(absl::StrCat("cancelled: ", options.cancel->reason()));
  }
  SimulatedDecision d = SimulateCompletion(request, settings_);
  LlmResponse out;
  out.text = d.text;
  out.finish_reason = "stop";
  size_t prompt_bytes = request.system.size();
  for (const Message& m : request.messages) prompt_bytes += m.content.size();
  out.input_tokens = static_cast<int64_t>((prompt_bytes + 3) / 4);
  out.output_tokens = static_cast<int64_t>((out.text.size() + 3) / 4);
  std::string key = request.system;
  for (const Message& m : request.messages) absl::StrAppend(&key, "\x1f", m.content);
  absl::StrAppend(&key, "\x1f", request.rollout_id);
  out.provider_request_id = absl::StrFormat("sim-%016x", Fnv(key));
  out.simulated = true;
  return out;
}

}  // namespace elexirion::llm
