#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/llm/http_providers.h"
#include "server/llm/json_util.h"

namespace elexirion::llm {

using json = nlohmann::json;

absl::StatusOr<HttpRequest> AnthropicProvider::BuildRequest(const LlmRequest& request) const {
  json body = json::object();
  body["model"] = request.model;
  body["max_tokens"] = request.max_tokens.value_or(config_.max_tokens_default);
  std::string system = request.system;
  json messages = json::array();
  for (const Message& m : request.messages) {
    if (m.role == "system") {  // Anthropic has no system role: fold into the system text
      absl::StrAppend(&system, system.empty() ? "" : "\n\n", m.content);
      continue;
    }
    messages.push_back(
        {{"role", m.role == "assistant" ? "assistant" : "user"}, {"content", m.content}});
  }
  if (request.json_response) {
    absl::StrAppend(&system, system.empty() ? "" : "\n\n",
                    "Respond with a single valid JSON object and nothing else.");
  }
  if (!system.empty()) body["system"] = system;
  body["messages"] = std::move(messages);
  if (request.temperature.has_value()) {
    body["temperature"] = std::clamp(*request.temperature, 0.0, 1.0);
  }
  if (!request.stop.empty()) body["stop_sequences"] = request.stop;

  HttpRequest http;
  http.url = absl::StrCat(config_.base_url, "/v1/messages");
  http.headers = {{"content-type", "application/json"},
                  {"anthropic-version", "2023-06-01"},
                  {"x-api-key", api_key_}};
  http.body = json_util::Dump(body);
  return http;
}

absl::StatusOr<LlmResponse> AnthropicProvider::ParseResponse(const HttpResponse& response) const {
  json body = ParseJson(response.body);
  if (!body.is_object()) return absl::InvalidArgumentError("body is not a JSON object");
  const json* content = json_util::Get(body, "content");
  if (content == nullptr || !content->is_array()) {
    return absl::InvalidArgumentError("missing content array");
  }
  LlmResponse out;
  for (const json& block : *content) {
    if (json_util::Str(block, "type") == "text") out.text += json_util::Str(block, "text");
  }
  const std::string stop = json_util::Str(body, "stop_reason");
  if (stop == "end_turn" || stop == "stop_sequence") {
    out.finish_reason = "stop";
  } else if (stop == "max_tokens" || stop == "model_context_window_exceeded") {
    out.finish_reason = "length";
  } else if (stop == "refusal") {
    out.finish_reason = "safety";
  } else {
    out.finish_reason = "other";
  }
  if (const json* usage = json_util::Get(body, "usage"); usage != nullptr) {
    out.input_tokens = json_util::Int(*usage, "input_tokens") +
                       json_util::Int(*usage, "cache_creation_input_tokens") +
                       json_util::Int(*usage, "cache_read_input_tokens");
    out.output_tokens = json_util::Int(*usage, "output_tokens");
  }
  out.provider_request_id = response.Header("request-id").value_or(json_util::Str(body, "id"));
  return out;
}

ProviderErrorInfo AnthropicProvider::ParseError(const json& body) const {
  ProviderErrorInfo info;
  const json* error = json_util::Get(body, "error");
  if (error == nullptr) return info;
  info.type = json_util::Str(*error, "type");
  info.message = json_util::Str(*error, "message");
  std::string code;
  if (const json* details = json_util::Get(*error, "details"); details != nullptr) {
    code = json_util::Str(*details, "error_code");
  }
  info.quota = info.type == "billing_error" || code == "enforced_spend_limit_reached" ||
               absl::StrContains(info.message, "credit balance is too low");
  return info;
}

}  // namespace elexirion::llm
