// fake_provider: the scripted fake LLM provider as a standalone process, for benchmarks and
// demos. Prints its port on the first line of stdout, then serves until SIGINT/SIGTERM.
//
//   fake_provider [--port N] [--latency-ms N] [--text TEXT] [--simulated]
//
// Every request is answered with a success body of the request's API (Anthropic, Gemini or
// OpenAI-compatible). --text fixes the answer text; --simulated answers like the built-in
// simulated model (server/llm/simulated_provider.h), so prompts and demos matter.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "server/llm/simulated_provider.h"
#include "tests/fakes/fake_provider_server.h"

namespace {

using elexirion::fakes::FakeApi;
using elexirion::fakes::FakeProviderServer;
using elexirion::fakes::FakeResponse;
using elexirion::fakes::RecordedRequest;
using json = nlohmann::json;

// The request body back into an LlmRequest (the inverse of the providers' mapping).
elexirion::llm::LlmRequest ToLlmRequest(const RecordedRequest& r) {
  elexirion::llm::LlmRequest out;
  json j = r.Json();
  if (!j.is_object()) return out;
  auto text_of = [](const json& parts) {
    std::string s;
    if (parts.is_array()) {
      for (const json& p : parts) {
        if (p.is_object() && p.contains("text") && p["text"].is_string())
          s += p["text"].get<std::string>();
      }
    }
    return s;
  };
  if (r.api() == FakeApi::kGemini) {
    if (j.contains("systemInstruction"))
      out.system = text_of(j["systemInstruction"].value("parts", json()));
    for (const json& c : j.value("contents", json::array())) {
      out.messages.push_back({c.value("role", "user") == "model" ? "assistant" : "user",
                              text_of(c.value("parts", json()))});
    }
    if (j.contains("generationConfig") && j["generationConfig"].contains("temperature")) {
      out.temperature = j["generationConfig"]["temperature"].get<double>();
    }
    return out;
  }
  if (j.contains("system") && j["system"].is_string()) out.system = j["system"].get<std::string>();
  for (const json& m : j.value("messages", json::array())) {
    std::string role = m.value("role", "user");
    std::string content = m.contains("content") && m["content"].is_string()
                              ? m["content"].get<std::string>()
                              : std::string();
    if (role == "system") {
      out.system += content;
    } else {
      out.messages.push_back({role, content});
    }
  }
  if (j.contains("temperature") && j["temperature"].is_number()) {
    out.temperature = j["temperature"].get<double>();
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  FakeProviderServer::Options options;
  std::string text = "ok";
  bool simulated = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "missing value for %s\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--port") {
      options.port = std::atoi(next().c_str());
    } else if (arg == "--latency-ms") {
      options.latency = absl::Milliseconds(std::atoi(next().c_str()));
    } else if (arg == "--text") {
      text = next();
    } else if (arg == "--simulated") {
      simulated = true;
    } else {
      std::fprintf(
          stderr, "usage: fake_provider [--port N] [--latency-ms N] [--text TEXT] [--simulated]\n");
      return 2;
    }
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before any thread starts

  auto server = FakeProviderServer::Start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "fake_provider: %s\n", server.status().ToString().c_str());
    return 1;
  }
  if (simulated) {
    (*server)->SetHandler([](const RecordedRequest& r) {
      elexirion::llm::SimulatedDecision d =
          elexirion::llm::SimulateCompletion(ToLlmRequest(r), elexirion::llm::SimulatedSettings{});
      FakeResponse response = FakeResponse::Text(d.text);
      response.output_tokens = static_cast<int64_t>(d.text.size() / 4 + 1);
      response.input_tokens = static_cast<int64_t>(r.body.size() / 4 + 1);
      return response;
    });
  } else {
    (*server)->SetHandler([text](const RecordedRequest&) { return FakeResponse::Text(text); });
  }
  std::printf("%d\n", (*server)->port());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  (*server)->Stop();
  return 0;
}
