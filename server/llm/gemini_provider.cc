#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/llm/errors.h"
#include "server/llm/http_providers.h"
#include "server/llm/json_util.h"

namespace elexirion::llm {

using json = nlohmann::json;

absl::StatusOr<HttpRequest> GeminiProvider::BuildRequest(const LlmRequest& request) const {
  std::string model = request.model;
  if (absl::StartsWith(model, "models/")) model = model.substr(7);
  // The model goes into the URL path: allow only characters model ids use.
  if (model.empty()) return InvalidRequestError("gemini: empty model");
  for (char c : model) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '.' && c != '_') {
      return InvalidRequestError(absl::StrCat("gemini: invalid model id '", model, "'"));
    }
  }
  json body = json::object();
  std::string system = request.system;
  json contents = json::array();
  for (const Message& m : request.messages) {
    if (m.role == "system") {
      absl::StrAppend(&system, system.empty() ? "" : "\n\n", m.content);
      continue;
    }
    contents.push_back({{"role", m.role == "assistant" ? "model" : "user"},
                        {"parts", json::array({{{"text", m.content}}})}});
  }
  if (!system.empty()) body["systemInstruction"] = {{"parts", json::array({{{"text", system}}})}};
  body["contents"] = std::move(contents);
  json gen = json::object();
  if (request.temperature.has_value())
    gen["temperature"] = std::clamp(*request.temperature, 0.0, 2.0);
  gen["maxOutputTokens"] = request.max_tokens.value_or(config_.max_tokens_default);
  if (!request.stop.empty()) gen["stopSequences"] = request.stop;
  if (request.json_response) gen["responseMimeType"] = "application/json";
  if (!request.response_schema.empty()) {
    json schema = ParseJson(request.response_schema);
    if (!schema.is_object())
      return InvalidRequestError("gemini: response schema is not a JSON object");
    gen["responseMimeType"] = "application/json";
    gen["responseSchema"] = std::move(schema);
  }
  body["generationConfig"] = std::move(gen);

  HttpRequest http;
  http.url = absl::StrCat(config_.base_url, "/v1beta/models/", model, ":generateContent");
  http.headers = {{"content-type", "application/json"}, {"x-goog-api-key", api_key_}};
  http.body = json_util::Dump(body);
  return http;
}

absl::StatusOr<LlmResponse> GeminiProvider::ParseResponse(const HttpResponse& response) const {
  json body = ParseJson(response.body);
  if (!body.is_object()) return absl::InvalidArgumentError("body is not a JSON object");
  LlmResponse out;
  out.provider_request_id = json_util::Str(body, "responseId");
  if (out.provider_request_id.empty()) {
    out.provider_request_id = response.Header("x-request-id").value_or("");
  }
  if (const json* usage = json_util::Get(body, "usageMetadata"); usage != nullptr) {
    out.input_tokens = json_util::Int(*usage, "promptTokenCount");
    out.output_tokens = json_util::Int(*usage, "candidatesTokenCount") +
                        json_util::Int(*usage, "thoughtsTokenCount");
  }
  const json* candidates = json_util::Get(body, "candidates");
  if (candidates == nullptr || !candidates->is_array() || candidates->empty()) {
    const json* feedback = json_util::Get(body, "promptFeedback");
    if (feedback != nullptr && !json_util::Str(*feedback, "blockReason").empty()) {
      out.finish_reason = "safety";  // the prompt itself was blocked
      return out;
    }
    return absl::InvalidArgumentError("missing candidates");
  }
  const json& first = (*candidates)[0];
  if (const json* content = json_util::Get(first, "content"); content != nullptr) {
    if (const json* parts = json_util::Get(*content, "parts");
        parts != nullptr && parts->is_array()) {
      for (const json& part : *parts) {
        if (const json* thought = json_util::Get(part, "thought");
            thought != nullptr && thought->is_boolean() && thought->get<bool>()) {
          continue;
        }
        out.text += json_util::Str(part, "text");
      }
    }
  }
  const std::string finish = json_util::Str(first, "finishReason");
  if (finish == "STOP") {
    out.finish_reason = "stop";
  } else if (finish == "MAX_TOKENS") {
    out.finish_reason = "length";
  } else if (finish == "SAFETY" || finish == "RECITATION" || finish == "BLOCKLIST" ||
             finish == "PROHIBITED_CONTENT" || finish == "SPII" || finish == "IMAGE_SAFETY") {
    out.finish_reason = "safety";
    out.text.clear();
  } else {
    out.finish_reason = "other";
  }
  return out;
}

ProviderErrorInfo GeminiProvider::ParseError(const json& body) const {
  ProviderErrorInfo info;
  const json* error = json_util::Get(body, "error");
  if (error == nullptr) return info;
  info.type = json_util::Str(*error, "status");
  info.message = json_util::Str(*error, "message");
  if (const json* details = json_util::Get(*error, "details");
      details != nullptr && details->is_array()) {
    for (const json& d : *details) {
      const std::string type = json_util::Str(d, "@type");
      if (absl::EndsWith(type, "google.rpc.RetryInfo")) {
        info.retry_delay = ParseProtoDuration(json_util::Str(d, "retryDelay"));
      }
    }
  }
  return info;
}

}  // namespace elexirion::llm
