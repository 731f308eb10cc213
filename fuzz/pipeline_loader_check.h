// The property both the libFuzzer target and the corpus replay test check for one input:
// LoadPipeline never crashes, hangs or leaks; a pipeline that loads can be listed, exported
// as YAML that loads again and exports identically, and executed (through a stub client, with
// a fake clock so retries never sleep) without crashing. A broken invariant aborts.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "server/common/clock.h"
#include "server/llm/llm_client.h"
#include "server/pipeline/executor.h"
#include "server/pipeline/loader.h"
#include "server/pipeline/optimized_yaml.h"
#include "server/pipeline/program.h"

namespace elexirion::pipeline::fuzzing {

// Answers every call; the text depends on the prompt so conditions and templates vary.
class StubClient final : public llm::LlmClient {
 public:
  absl::StatusOr<llm::LlmResponse> Complete(const llm::LlmRequest& request,
                                            const llm::CallOptions&) override {
    const std::string& prompt = request.messages.back().content;
    if (prompt.find("fail") != std::string::npos) {
      return absl::UnavailableError("temporary_error: stub failure");
    }
    llm::LlmResponse r;
    r.text = prompt.size() % 2 == 0 ? "{\"severity\": \"high\", \"score\": 7}"
                                    : "stub answer " + std::to_string(prompt.size());
    r.cost_usd = 0.001;
    r.model = request.model;
    return r;
  }
};

inline void Check(bool ok, const char* what, const std::string& detail) {
  if (ok) return;
  std::fprintf(stderr, "pipeline loader invariant broken: %s\n%s\n", what, detail.c_str());
  std::abort();
}

inline void CheckPipelineLoader(std::string_view yaml) {
  auto pipeline = LoadPipeline(yaml);
  if (!pipeline.ok()) {
    Check(pipeline.status().code() == absl::StatusCode::kInvalidArgument,
          "load errors are INVALID_ARGUMENT", pipeline.status().ToString());
    return;
  }
  (void)ListOptimizableSteps(*pipeline);

  auto exported = RenderOptimizedYaml(*pipeline, ProgramState{});
  Check(exported.ok(), "export succeeds", exported.status().ToString());
  LoadOptions roomy;
  roomy.yaml.max_bytes = 64 << 20;
  roomy.yaml.max_expanded_bytes = 64 << 20;
  auto reloaded = LoadPipeline(*exported, roomy);
  Check(reloaded.ok(), "exported YAML loads", reloaded.status().ToString() + "\n" + *exported);
  auto again = RenderOptimizedYaml(*reloaded, ProgramState{});
  Check(again.ok() && *again == *exported, "export is stable",
        *exported + "\n-----\n" + again.value_or(""));

  static StubClient* client = new StubClient();
  static FakeClock* clock = new FakeClock();
  static PipelineExecutor* executor = [] {
    PipelineExecutor::Options options;
    options.client = client;
    options.clock = clock;
    options.max_parallel_tasks = 1;
    return PipelineExecutor::Create(options)->release();
  }();
  auto result = executor->Execute(*pipeline, nlohmann::json{{"code", "x"}, {"n", 2}});
  Check(result.ok(), "execution of a loaded pipeline returns a result", result.status().ToString());
}

}  // namespace elexirion::pipeline::fuzzing
