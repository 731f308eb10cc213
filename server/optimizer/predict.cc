#include "server/optimizer/predict.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace elexirion::optimizer {
namespace {

llm::LlmRequest BuildRequest(const PredictRequest& request, AdapterKind kind) {
  static const std::vector<ojson> kNoDemos;
  const std::vector<ojson>& demos = request.demos != nullptr ? *request.demos : kNoDemos;
  FormattedPrompt prompt = FormatPrompt(kind, *request.signature, demos, request.inputs);
  llm::LlmRequest out = request.base;
  out.system = request.base.system.empty()
                   ? prompt.system
                   : absl::StrCat(request.base.system, "\n\n", prompt.system);
  out.messages = std::move(prompt.messages);
  out.json_response = kind == AdapterKind::kJson;
  return out;
}

}  // namespace

bool IsParseFailure(const absl::Status& status) {
  return status.code() == absl::StatusCode::kInvalidArgument &&
         absl::StartsWith(status.message(), "adapter parse failure");
}

absl::StatusOr<PredictResult> CallPredict(llm::LlmClient& client, const PredictRequest& request,
                                          const llm::CallOptions& options, int* failures) {
  PredictResult result;
  if (failures != nullptr) *failures = 0;
  AdapterKind kind = request.adapter;
  while (true) {
    llm::LlmRequest llm_request = BuildRequest(request, kind);
    absl::StatusOr<llm::LlmResponse> response = client.Complete(llm_request, options);
    ++result.calls;
    if (!response.ok()) return response.status();
    result.last_response = *response;
    if (response->cache_hit) {
      ++result.usage.cache_hits;
    } else {
      ++result.usage.llm_calls;
      result.usage.input_tokens += response->input_tokens;
      result.usage.output_tokens += response->output_tokens;
      result.usage.cost_usd += response->cost_usd;
    }
    absl::StatusOr<ojson> parsed = ParseCompletion(kind, *request.signature, response->text);
    if (parsed.ok()) {
      result.outputs = std::move(*parsed);
      result.used_json_fallback = kind != request.adapter;
      return result;
    }
    ++result.parse_failures;
    if (failures != nullptr) *failures = result.parse_failures;
    if (kind == AdapterKind::kChat && request.json_fallback) {
      kind = AdapterKind::kJson;
      continue;
    }
    return parsed.status();
  }
}

}  // namespace elexirion::optimizer
