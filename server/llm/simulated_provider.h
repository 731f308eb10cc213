// The built-in simulated model: deterministic, offline, free. Its answers depend on the
// prompt the way a real model's do, so an optimizer's effect (adding demos, rewriting the
// instruction) shows offline. Every response has simulated=true, finish_reason "stop" and a
// request id "sim-<16 hex>".
//
// READING THE PROMPT (system text + all messages)
// * DSPy ChatAdapter style: a line starting with "[[ ## name ## ]]" opens field `name`; its
//   value runs to the next such line. Markers in the middle of a line (the "Respond with ...
//   `[[ ## answer ## ]]`" sentence) are references, not fields; a paragraph holding them is
//   cut off the field value before it. Values like "{question}" (templates) are ignored.
//   - Query inputs: the fields of the last user message that are not output fields.
//   - Output fields: the names referenced in the last user message (except `completed`),
//     else the fields of earlier assistant messages, else the "Your output fields are:"
//     list of the system text, else `answer`.
//   - Demos: each earlier (user, assistant) message pair with fields, and, inside any
//     earlier text, runs of input fields followed by output fields ("inline" demos).
// * Plain style: lines starting with "Input:" and "Output:" (any case). An Input followed by
//   a non-empty Output (or, when the Input ends a user message, the next assistant message)
//   is a demo; the last Input without an Output is the query.
// * Otherwise the query is the whole last user message and there are no demos.
//
// THE TRUE ANSWER of the query, first rule that applies:
//   1. A demo whose input equals the query: its output (copied; always answered).
//   2. Arithmetic: "A op B" with integers or decimals, op one of + - * x / plus minus times
//      "multiplied by" "divided by" -> the result ("42", "2.5").
//   3. Sentiment: the prompt mentions "sentiment" or every demo answer is positive/negative/
//      neutral -> "positive" if the query has more positive than negative lexicon words
//      (good, great, love, excellent, ...), "negative" for the reverse, else "neutral"
//      (spelled like the demos' labels when they differ in case).
//   4. Nearest demo: the answer of the demo sharing the most content tokens with the query
//      (content token: lower-case run of letters/digits, >= 3 chars, not a stop word).
//   5. None: the answer is "unknown".
// WHEN IT KNOWS: relevant demos >= min_relevant_demos (default 2; a demo is relevant when it
//   shares a content token with the query, or both are arithmetic), or the instruction (the
//   system text plus the last user message minus the query's values) contains a cue word
//   (default "step by step", case-insensitive; configurable).
//   Knows -> the true answer. Otherwise a plausible wrong one: arithmetic result + 1..9;
//   sentiment the opposite label (neutral -> positive); nearest-demo another demo's answer,
//   else "unknown".
// NOISE: with temperature t > 0 the "knows" decision flips with probability min(0.3, 0.25 t),
//   drawn from a hash of (prompt, rollout_id, t), so rollouts differ but repeat exactly.
// FIELDS: the rules above answer the primary output field (the first that is not reasoning or
//   rationale; demos' answers are their values of it). Reasoning and rationale fields get one
//   explanatory sentence. Every other output field is answered from the matching field of the
//   demos: the demo the answer came from (the copied or nearest demo; when the model does not
//   know, the demo whose wrong answer it gives), else the most relevant demo that fills the
//   field and gave the same answer, else the answer itself. So a code review answers
//   severity, findings and recommendations like its nearest example, not "critical" three
//   times, and a wrong answer is wrong consistently.
// OUTPUT: ChatAdapter prompts get "[[ ## f ## ]]\n<value>\n\n" per output field and a final
//   "[[ ## completed ## ]]"; json_response gets a JSON object of the output fields
//   ({"answer": ...} for plain prompts); plain prompts get the answer alone.
// USAGE: input tokens = ceil(prompt bytes / 4), output tokens = ceil(text bytes / 4).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "server/llm/provider.h"
#include "server/llm/providers_config.h"

namespace elexirion::llm {

// What the simulated model decided, for tests and demos.
struct SimulatedDecision {
  std::string query;
  int demos = 0;
  int relevant_demos = 0;
  bool cue = false;
  bool knows = false;
  std::string rule;  // "copy", "arithmetic", "sentiment", "nearest_demo", "none"
  std::string true_answer;
  std::string answer;
  std::vector<std::string> output_fields;  // empty for plain prompts
  // Chat style: the value written for each output field.
  std::map<std::string, std::string> field_values;
  std::string text;  // the full response text
};

// The pure decision function (no latency, no cancellation).
SimulatedDecision SimulateCompletion(const LlmRequest& request, const SimulatedSettings& settings);

// Thread safe (immutable).
class SimulatedProvider final : public Provider {
 public:
  explicit SimulatedProvider(SimulatedSettings settings) : settings_(std::move(settings)) {}
  absl::StatusOr<LlmResponse> Call(const LlmRequest& request,
                                   const AttemptOptions& options) override;

 private:
  const SimulatedSettings settings_;
};

}  // namespace elexirion::llm
