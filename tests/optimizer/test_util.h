// Shared helpers for the optimizer tests and the optimize benchmark:
//  - FnClient: an LlmClient double answering through a function (unit tests of logic);
//  - FakeDspyModel: a deterministic "model" whose answers depend on the prompt the way the
//    issue asks: arithmetic questions ("What is 17 + 25?") are answered right only with at
//    least two demos of the same operation in the prompt or the cue words "step by step" in the
//    system message; multiplication questions ("What is 6 * 7?") only with the cue;
//    subtraction questions ("What is 9 - 4?") only with the cue "borrow carefully". It also
//    plays the prompt model (COPRO / MIPROv2 proposals, dataset summaries, descriptions,
//    SIMBA's advice), the judge of llm_judge metrics (it names the rubric's 'quoted' cue in its
//    reasoning when the answer is wrong) and GEPA's reflection model (a "step by step"
//    instruction that also asks for every 'quoted' cue the feedback names);
//  - FakeModelServer: the fake provider server (tests/fakes) answering through FakeDspyModel
//    over real HTTP (OpenAI API), a ProviderRouter pointed at it and an in-memory LLM cache.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"
#include "server/llm/llm_cache.h"
#include "server/llm/llm_client.h"
#include "server/llm/provider_router.h"
#include "server/llm/providers_config.h"
#include "server/optimizer/example.h"
#include "server/optimizer/optimize.h"
#include "server/optimizer/text_util.h"
#include "server/pipeline/loader.h"
#include "tests/fakes/fake_provider_server.h"
#include "yaml-cpp/yaml.h"

namespace elexirion::optimizer::testing {

using ojson = nlohmann::ordered_json;

// Test setup failures are fatal (the helpers are shared with the benchmark, without gtest).
inline void SetupFailure(const std::string& what) {
  std::fprintf(stderr, "test setup failed: %s\n", what.c_str());
  std::abort();
}

// An LlmClient that answers through a function. Thread safe.
class FnClient final : public llm::LlmClient {
 public:
  using Fn = std::function<absl::StatusOr<llm::LlmResponse>(const llm::LlmRequest&)>;
  explicit FnClient(Fn fn) : fn_(std::move(fn)) {}
  absl::StatusOr<llm::LlmResponse> Complete(const llm::LlmRequest& request,
                                            const llm::CallOptions& options) override {
    {
      absl::MutexLock lock(&mu_);
      requests_.push_back(request);
    }
    if (options.account != nullptr) {
      absl::Status budget = options.account->CheckBudget();
      if (!budget.ok()) return budget;
    }
    absl::StatusOr<llm::LlmResponse> r = fn_(request);
    if (r.ok() && options.account != nullptr) options.account->Record(*r);
    return r;
  }
  std::vector<llm::LlmRequest> requests() const {
    absl::MutexLock lock(&mu_);
    return requests_;
  }
  size_t calls() const {
    absl::MutexLock lock(&mu_);
    return requests_.size();
  }

 private:
  Fn fn_;
  mutable absl::Mutex mu_;
  std::vector<llm::LlmRequest> requests_;
};

inline llm::LlmResponse TextResponse(std::string text) {
  llm::LlmResponse r;
  r.text = std::move(text);
  r.finish_reason = "stop";
  r.input_tokens = 10;
  r.output_tokens = 5;
  return r;
}

inline std::shared_ptr<const pipeline::Pipeline> LoadOrDie(const std::string& yaml) {
  auto p = pipeline::LoadPipeline(yaml);
  if (!p.ok()) SetupFailure(p.status().ToString());
  return std::make_shared<const pipeline::Pipeline>(std::move(*p));
}

// "[[ ## name ## ]]" sections of a text.
inline std::map<std::string, std::string> Sections(const std::string& text) {
  std::map<std::string, std::string> out;
  std::string current;
  std::string value;
  bool open = false;
  for (const std::string& line : PySplitLines(text)) {
    std::string name;
    size_t end = 0;
    if (MatchFieldHeader(PyStrip(line), &name, &end)) {
      if (open) out.emplace(current, PyStrip(value));
      current = name;
      value.clear();
      open = true;
      continue;
    }
    if (open) absl::StrAppend(&value, line, "\n");
  }
  if (open) out.emplace(current, PyStrip(value));
  return out;
}

struct ChatTurn {
  std::string role;
  std::string content;
};

// The deterministic model (see the file comment).
class FakeDspyModel {
 public:
  static std::vector<std::string> OutputFields(const std::string& system) {
    std::vector<std::string> out;
    const size_t at = system.find("Your output fields are:\n");
    if (at == std::string::npos) return out;
    const size_t end = system.find("All interactions will be structured", at);
    const std::string block =
        system.substr(at, end == std::string::npos ? std::string::npos : end - at);
    for (absl::string_view line : absl::StrSplit(block, '\n')) {
      const size_t tick = line.find(". `");
      if (tick == absl::string_view::npos) continue;
      const size_t close = line.find('`', tick + 3);
      if (close == absl::string_view::npos) continue;
      out.emplace_back(line.substr(tick + 3, close - tick - 3));
    }
    return out;
  }

  // Returns the completion text.
  static std::string Answer(const std::string& system, const std::vector<ChatTurn>& turns,
                            bool json) {
    const std::vector<std::string> outputs = OutputFields(system);
    std::string last_user;
    for (auto it = turns.rbegin(); it != turns.rend(); ++it) {
      if (it->role == "user") {
        last_user = it->content;
        break;
      }
    }
    if (outputs.empty() && absl::StrContains(last_user, "Write a new instruction")) {
      return Reflect(last_user);
    }
    const auto query = Sections(last_user);
    std::map<std::string, std::string> values;
    const std::string lower_system = absl::AsciiStrToLower(system);
    const bool cue = absl::StrContains(lower_system, "step by step");
    const bool judging = query.count("actual_output") != 0;
    for (const std::string& f : outputs) {
      if (f == "answer") {
        auto q = query.find("question");
        const std::string question = q == query.end() ? "" : q->second;
        if (absl::StrContains(question, "parse-me") && !json) return "The answer is 42.";
        const char op = absl::StrContains(question, "*")     ? '*'
                        : absl::StrContains(question, " - ") ? '-'
                                                             : '+';
        int relevant = 0;
        for (size_t i = 0; i + 1 < turns.size(); ++i) {
          if (turns[i].role != "user" || turns[i + 1].role != "assistant") continue;
          auto demo = Sections(turns[i].content);
          auto dq = demo.find("question");
          if (dq != demo.end() && dq->second.find(op) != std::string::npos &&
              absl::StrContains(turns[i + 1].content, "answer")) {
            ++relevant;
          }
        }
        const bool knows = op == '-' ? absl::StrContains(lower_system, "borrow carefully")
                                     : cue || (op == '+' && relevant >= 2);
        const int64_t truth = Solve(question);
        values[f] = absl::StrCat(knows ? truth : truth + 1);
      } else if (judging && (f == "reasoning" || f == "score")) {
        const std::string verdict = Judge(query);
        values[f] = f == "score"
                        ? (verdict.empty() ? "10" : "2")
                        : (verdict.empty() ? "The answer matches the expected output." : verdict);
      } else if (f == "module_advice") {
        ojson advice = ojson::object();
        auto names = query.find("module_names");
        ojson parsed =
            names == query.end() ? ojson::array() : ojson::parse(names->second, nullptr, false);
        if (parsed.is_array()) {
          for (const auto& n : parsed) {
            if (n.is_string()) advice[n.get<std::string>()] = "Answer with the number only.";
          }
        }
        values[f] = advice.dump();
      } else if (f == "reasoning") {
        values[f] = "Compute the operation on the two numbers.";
      } else if (f == "proposed_instruction") {
        if (query.count("attempted_instructions") != 0) {
          values[f] = "Solve the arithmetic question step by step and answer with the number.";
        } else if (query.count("task_demos") == 0) {
          values[f] = "Compute the exact result of the arithmetic question.";
        } else if (query.count("tip") != 0) {
          values[f] =
              "Proposed Instruction: Work through the arithmetic step by step, then give only the "
              "number.";
        } else {
          values[f] = "Give only the resulting number.";
        }
      } else if (f == "proposed_prefix_for_output_field") {
        values[f] = "Answer:";
      } else if (f == "observations") {
        values[f] = "The examples are short arithmetic questions with integer answers.";
      } else if (f == "summary") {
        values[f] = "Summary: arithmetic questions with integer answers.";
      } else if (f == "program_description") {
        values[f] = "The program answers arithmetic questions.";
      } else if (f == "module_description") {
        values[f] = "It produces the numeric answer.";
      } else {
        values[f] = "8";
      }
    }
    if (json) {
      ojson obj = ojson::object();
      for (const std::string& f : outputs) obj[f] = values[f];
      return obj.dump(2);
    }
    std::string text;
    for (const std::string& f : outputs)
      absl::StrAppend(&text, "[[ ## ", f, " ## ]]\n", values[f], "\n\n");
    absl::StrAppend(&text, "[[ ## completed ## ]]");
    return text;
  }

  // Phrases between single quotes ('...') of a text, in order.
  static std::vector<std::string> QuotedCues(const std::string& text) {
    std::vector<std::string> out;
    size_t at = 0;
    while (true) {
      const size_t open = text.find('\'', at);
      if (open == std::string::npos) break;
      const size_t close = text.find('\'', open + 1);
      if (close == std::string::npos) break;
      const std::string cue = text.substr(open + 1, close - open - 1);
      if (!cue.empty() && cue.size() < 40) out.push_back(cue);
      at = close + 1;
    }
    return out;
  }

  // The judge: "" when the actual answer equals the expected one, else why not (naming the
  // rubric's quoted cues).
  static std::string Judge(const std::map<std::string, std::string>& query) {
    auto field = [&](const char* name) {
      auto it = query.find(name);
      if (it == query.end()) return std::string();
      // The last input section runs into the output reminder.
      const std::string text = it->second.substr(0, it->second.find("\n\nRespond with"));
      ojson j = ojson::parse(text, nullptr, false);
      if (j.is_object() && j.contains("answer")) {
        return j["answer"].is_string() ? j["answer"].get<std::string>() : j["answer"].dump();
      }
      return text;
    };
    const std::string actual = field("actual_output");
    const std::string expected = field("expected_output");
    if (actual == expected) return "";
    std::string why = absl::StrCat("The answer should be ", expected, " but was ", actual, ".");
    auto rubric = query.find("rubric");
    if (rubric != query.end()) {
      for (const std::string& cue : QuotedCues(rubric->second)) {
        absl::StrAppend(&why, " As the rubric says, the solver must '", cue, "'.");
      }
    }
    return why;
  }

  // GEPA's reflection model: reads the feedback sections of the prompt.
  static std::string Reflect(const std::string& prompt) {
    std::string instruction =
        "Solve the arithmetic question step by step and answer with the number only.";
    std::vector<std::string> seen;
    size_t at = 0;
    while ((at = prompt.find("## Feedback\n", at)) != std::string::npos) {
      at += 12;
      const size_t end = prompt.find("\n\n", at);
      for (const std::string& cue : QuotedCues(prompt.substr(at, end - at))) {
        if (std::find(seen.begin(), seen.end(), cue) != seen.end()) continue;
        seen.push_back(cue);
        absl::StrAppend(&instruction, " Always ", cue, ".");
      }
    }
    return absl::StrCat("Here is the improved instruction:\n```text\n", instruction, "\n```");
  }

  // "What is 17 + 25?" -> 42.
  static int64_t Solve(const std::string& question) {
    std::vector<int64_t> numbers;
    std::string cur;
    for (char c : question + " ") {
      if (absl::ascii_isdigit(static_cast<unsigned char>(c))) {
        cur.push_back(c);
      } else if (!cur.empty()) {
        int64_t v = 0;
        (void)absl::SimpleAtoi(cur, &v);
        numbers.push_back(v);
        cur.clear();
      }
    }
    if (numbers.size() < 2) return 0;
    if (absl::StrContains(question, " - ")) return numbers[0] - numbers[1];
    return absl::StrContains(question, "*") ? numbers[0] * numbers[1] : numbers[0] + numbers[1];
  }

  static fakes::FakeResponse Handle(const fakes::RecordedRequest& request) {
    nlohmann::json body = request.Json();
    std::string system;
    std::vector<ChatTurn> turns;
    if (body.is_object() && body.contains("messages")) {
      for (const auto& m : body["messages"]) {
        const std::string role = m.value("role", "");
        const std::string content = m.value("content", "");
        if (role == "system") {
          system = content;
        } else {
          turns.push_back({role, content});
        }
      }
    }
    const bool json = body.is_object() && body.contains("response_format");
    fakes::FakeResponse r = fakes::FakeResponse::Text(Answer(system, turns, json));
    r.input_tokens = static_cast<int64_t>(request.body.size() / 4);
    r.output_tokens = static_cast<int64_t>(r.text.size() / 4);
    return r;
  }
};

inline Example MakeExample(const std::string& question, int64_t answer) {
  Example e;
  e.input = ojson{{"question", question}};
  e.expected_output = ojson{{"answer", absl::StrCat(answer)}};
  return e;
}

// n examples "What is a OP b?" from a deterministic sequence starting at `offset`.
inline std::vector<Example> ArithmeticExamples(int n, char op, int offset) {
  std::vector<Example> out;
  for (int i = 0; i < n; ++i) {
    const int a = 3 + ((offset + i) * 7) % 41;
    const int b = 2 + ((offset + i) * 13) % 37;
    const std::string q = absl::StrCat("What is ", a, " ", std::string(1, op), " ", b, "?");
    out.push_back(MakeExample(q, op == '*' ? a * b : op == '-' ? a - b : a + b));
  }
  return out;
}

inline const char* kQaPipeline = R"(workflow:
  name: arithmetic_qa
  steps:
    - name: solve
      type: claude
      signature: "question -> answer"
      prompt:
        - type: static
          content: "Answer the arithmetic question."
)";

// An optimization of kQaPipeline on 20 train / 20 validation questions of `op`, scored by exact
// match of `answer`, 8 threads, every step on the "fake" provider.
inline OptimizeRequest ArithmeticRequest(const std::string& optimizer, ojson params, char op) {
  OptimizeRequest r;
  r.pipeline = LoadOrDie(kQaPipeline);
  r.trainset = ArithmeticExamples(20, op, 0);
  r.valset = ArithmeticExamples(20, op, 100);
  r.metric.kind = MetricSpec::Kind::kExactMatch;
  r.metric.field = "answer";
  r.optimizer = optimizer;
  r.optimizer_params = std::move(params);
  r.num_threads = 8;
  r.provider_for_step = [](const std::string&) { return std::string("fake"); };
  return r;
}

// The fake provider server answering with FakeDspyModel, a router to it, and a cache.
class FakeModelServer {
 public:
  explicit FakeModelServer(absl::Duration latency = absl::ZeroDuration(),
                           int max_concurrency = 64) {
    fakes::FakeProviderServer::Options options;
    options.latency = latency;
    auto server = fakes::FakeProviderServer::Start(options);
    if (!server.ok()) SetupFailure(server.status().ToString());
    server_ = std::move(*server);
    server_->SetHandler([](const fakes::RecordedRequest& r) { return FakeDspyModel::Handle(r); });
    cache_ = std::make_shared<llm::InMemoryLlmCache>(1'000'000);
    router_ = MakeRouter(cache_, max_concurrency);
  }

  std::unique_ptr<llm::ProviderRouter> MakeRouter(std::shared_ptr<llm::LlmCache> cache,
                                                  int max_concurrency) const {
    const std::string yaml = absl::StrCat(
        "default_provider: fake\nproviders:\n  fake: {kind: openai, base_url: '",
        server_->base_url(),
        "/v1', default_model: fake-model, max_retries: 0, max_concurrency: ", max_concurrency,
        ", prices: {fake-model: {input: 1, output: 2}}}\n");
    auto config = llm::ParseProvidersConfig(YAML::Load(yaml));
    if (!config.ok()) SetupFailure(config.status().ToString());
    llm::ProviderRouter::Options options;
    options.config = *config;
    options.cache = std::move(cache);
    options.jitter_seed = 7;
    options.env = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
    auto router = llm::ProviderRouter::Create(options);
    if (!router.ok()) SetupFailure(router.status().ToString());
    return std::move(*router);
  }

  fakes::FakeProviderServer& server() { return *server_; }
  llm::ProviderRouter& router() { return *router_; }
  std::shared_ptr<llm::InMemoryLlmCache> cache() { return cache_; }

 private:
  std::unique_ptr<fakes::FakeProviderServer> server_;
  std::shared_ptr<llm::InMemoryLlmCache> cache_;
  std::unique_ptr<llm::ProviderRouter> router_;
};

}  // namespace elexirion::optimizer::testing
