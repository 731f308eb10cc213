#include <algorithm>

#include "absl/strings/str_cat.h"
#include "server/llm/http_providers.h"
#include "server/llm/json_util.h"

namespace elexirion::llm {

using json = nlohmann::json;

absl::StatusOr<HttpRequest> OpenAiProvider::BuildRequest(const LlmRequest& request) const {
  json body = json::object();
  body["model"] = request.model;
  json messages = json::array();
  if (!request.system.empty())
    messages.push_back({{"role", "system"}, {"content", request.system}});
  for (const Message& m : request.messages) {
    const std::string role =
        (m.role == "assistant" || m.role == "system") ? m.role : std::string("user");
    messages.push_back({{"role", role}, {"content", m.content}});
  }
  body["messages"] = std::move(messages);
  if (request.temperature.has_value())
    body["temperature"] = std::clamp(*request.temperature, 0.0, 2.0);
  body[config_.max_tokens_field] = request.max_tokens.value_or(config_.max_tokens_default);
  if (!request.stop.empty()) body["stop"] = request.stop;
  if (request.json_response) body["response_format"] = {{"type", "json_object"}};

  HttpRequest http;
  http.url = absl::StrCat(config_.base_url, "/chat/completions");
  http.headers = {{"content-type", "application/json"}};
  if (!api_key_.empty())
    http.headers.emplace_back("authorization", absl::StrCat("Bearer ", api_key_));
  http.body = json_util::Dump(body);
  return http;
}

absl::StatusOr<LlmResponse> OpenAiProvider::ParseResponse(const HttpResponse& response) const {
  json body = ParseJson(response.body);
  if (!body.is_object()) return absl::InvalidArgumentError("body is not a JSON object");
  const json* choices = json_util::Get(body, "choices");
  if (choices == nullptr || !choices->is_array() || choices->empty()) {
    return absl::InvalidArgumentError("missing choices");
  }
  const json& first = (*choices)[0];
  const json* message = json_util::Get(first, "message");
  if (message == nullptr || !message->is_object())
    return absl::InvalidArgumentError("missing message");
  LlmResponse out;
  out.text = json_util::Str(*message, "content");
  const std::string finish = json_util::Str(first, "finish_reason");
  if (finish == "stop") {
    out.finish_reason = "stop";
  } else if (finish == "length") {
    out.finish_reason = "length";
  } else if (finish == "content_filter") {
    out.finish_reason = "safety";
  } else {
    out.finish_reason = "other";
  }
  if (!json_util::Str(*message, "refusal").empty()) {
    out.finish_reason = "safety";
    out.text.clear();
  }
  if (const json* usage = json_util::Get(body, "usage"); usage != nullptr) {
    out.input_tokens = json_util::Int(*usage, "prompt_tokens");
    out.output_tokens = json_util::Int(*usage, "completion_tokens");
  }
  out.provider_request_id = response.Header("x-request-id").value_or(json_util::Str(body, "id"));
  return out;
}

ProviderErrorInfo OpenAiProvider::ParseError(const json& body) const {
  ProviderErrorInfo info;
  const json* error = json_util::Get(body, "error");
  if (error == nullptr) return info;
  if (error->is_string()) {  // some compatible servers answer {"error": "text"}
    info.message = error->get<std::string>();
    return info;
  }
  const std::string code = json_util::Str(*error, "code");
  const std::string type = json_util::Str(*error, "type");
  info.type = code.empty() ? type : code;
  info.message = json_util::Str(*error, "message");
  info.quota = code == "insufficient_quota" || type == "insufficient_quota" ||
               code == "billing_hard_limit_reached" || code == "credit_balance_exhausted" ||
               code == "project_spend_limit_exceeded";
  return info;
}

}  // namespace elexirion::llm
