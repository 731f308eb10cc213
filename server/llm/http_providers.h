// The three HTTP wire protocols (reliability.md §2.3 has the shapes):
//   AnthropicProvider  POST {base}/v1/messages, x-api-key + anthropic-version: 2023-06-01
//   GeminiProvider     POST {base}/v1beta/models/{model}:generateContent, x-goog-api-key
//                      (never a key= query parameter)
//   OpenAiProvider     POST {base}/chat/completions, Authorization: Bearer (omitted when
//                      the instance has no key, e.g. a local vLLM/Ollama/llama.cpp server)
// Finish reasons are normalised to stop / length / safety / other. A safety block (Gemini
// promptFeedback.blockReason or finishReason SAFETY, Anthropic refusal, OpenAI
// content_filter or refusal) is a successful response with finish_reason "safety" and no
// text, never retried. JSON mode: OpenAI response_format json_object, Gemini
// responseMimeType application/json, Anthropic an instruction appended to the system text.
// All thread safe (immutable).
#pragma once

#include "server/llm/http_provider.h"

namespace elexirion::llm {

class AnthropicProvider final : public HttpProvider {
 public:
  using HttpProvider::HttpProvider;

 protected:
  absl::StatusOr<HttpRequest> BuildRequest(const LlmRequest& request) const override;
  absl::StatusOr<LlmResponse> ParseResponse(const HttpResponse& response) const override;
  ProviderErrorInfo ParseError(const nlohmann::json& body) const override;
};

class GeminiProvider final : public HttpProvider {
 public:
  using HttpProvider::HttpProvider;

 protected:
  absl::StatusOr<HttpRequest> BuildRequest(const LlmRequest& request) const override;
  absl::StatusOr<LlmResponse> ParseResponse(const HttpResponse& response) const override;
  ProviderErrorInfo ParseError(const nlohmann::json& body) const override;
};

class OpenAiProvider final : public HttpProvider {
 public:
  using HttpProvider::HttpProvider;

 protected:
  absl::StatusOr<HttpRequest> BuildRequest(const LlmRequest& request) const override;
  absl::StatusOr<LlmResponse> ParseResponse(const HttpResponse& response) const override;
  ProviderErrorInfo ParseError(const nlohmann::json& body) const override;
};

}  // namespace elexirion::llm
