#include "server/optimizer/reflection.h"

#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"
#include "server/optimizer/hashing.h"
#include "server/optimizer/py_format.h"
#include "server/optimizer/text_util.h"

namespace elexirion::optimizer {
namespace {

std::string ValueText(const ojson& v) {
  if (v.is_string()) return v.get<std::string>();
  return PyStr(v);
}

void AppendFields(std::string* out, const ojson& fields) {
  if (!fields.is_object()) {
    absl::StrAppend(out, ValueText(fields), "\n\n");
    return;
  }
  for (auto it = fields.begin(); it != fields.end(); ++it) {
    absl::StrAppend(out, "### ", it.key(), "\n", ValueText(it.value()), "\n\n");
  }
}

}  // namespace

std::string RenderReflectionPrompt(const std::string& current_instruction,
                                   const std::vector<ReflectionRecord>& records) {
  std::string examples;
  for (size_t i = 0; i < records.size(); ++i) {
    absl::StrAppend(&examples, "# Example ", i + 1, "\n## Inputs\n");
    AppendFields(&examples, records[i].inputs);
    absl::StrAppend(&examples, "## Generated Outputs\n");
    AppendFields(&examples, records[i].outputs);
    absl::StrAppend(&examples, "## Feedback\n", records[i].feedback, "\n\n");
  }
  return absl::StrCat(
      "An assistant was given this instruction for a task:\n```\n", current_instruction,
      "\n```\n\nHere are inputs it received, the outputs it generated and feedback on each "
      "output:\n```\n",
      PyStrip(examples),
      "\n```\n\nWrite a new instruction for the assistant.\n\nStudy the inputs to work out "
      "their format and the task itself. Use the feedback to see what the assistant got wrong "
      "and what a correct answer needs. The assistant will never see these examples, so put "
      "into the instruction every domain-specific fact they reveal and any general strategy "
      "that worked.\n\nGive the new instruction between ``` fences.");
}

std::string ExtractInstruction(const std::string& answer) {
  const size_t first = answer.find("```");
  const size_t last = answer.rfind("```");
  if (first == std::string::npos || last <= first) return PyStrip(answer);
  std::string inner = answer.substr(first + 3, last - first - 3);
  // A language tag on the opening fence ("```text").
  const size_t nl = inner.find('\n');
  if (nl != std::string::npos) {
    const std::string tag = inner.substr(0, nl);
    if (!tag.empty() && tag.find(' ') == std::string::npos) inner = inner.substr(nl + 1);
  }
  return PyStrip(inner);
}

absl::StatusOr<std::string> ProposeInstruction(OptimizerContext& ctx, const LmSettings& lm,
                                               const std::string& current_instruction,
                                               const std::vector<ReflectionRecord>& records,
                                               const std::string& rollout) {
  const std::string prompt = RenderReflectionPrompt(current_instruction, records);
  const std::string key = absl::StrCat(
      "reflect/",
      HashHex(absl::StrCat(prompt, "\x1f", OptimizerContext::LmKey(lm), "\x1f", rollout)));
  if (std::optional<ojson> saved = ctx.Lookup(key); saved && saved->is_string()) {
    return saved->get<std::string>();
  }
  RETURN_IF_ERROR(ctx.CheckStop());
  llm::LlmRequest request;
  request.provider = lm.provider;
  request.model = lm.model;
  request.temperature = lm.temperature;
  request.max_tokens = lm.max_tokens;
  request.rollout_id = rollout;
  request.messages.push_back(llm::Message{"user", prompt});
  llm::CallOptions options;
  options.cancel = ctx.student().cancel;
  options.account = ctx.student().account;
  options.deadline = ctx.student().deadline;
  absl::StatusOr<llm::LlmResponse> response = ctx.client().Complete(request, options);
  if (!response.ok()) return response.status();
  std::string instruction = ExtractInstruction(response->text);
  ctx.Record(key, instruction);
  return instruction;
}

}  // namespace elexirion::optimizer
