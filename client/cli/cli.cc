#include "client/cli/cli.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/cli/command.h"
#include "client/cli/datasets_command.h"
#include "client/cli/help.h"
#include "client/cli/optimizer_params.h"
#include "client/cli/text_file.h"
#include "client/cli/usage_command.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"

namespace elexirion::cli {
namespace {

using Args = std::vector<std::string>;

// The deadline of `run` without --timeout: the server's default execution limit.
constexpr absl::Duration kRunTimeout = absl::Minutes(10);

std::string FormatTime(const google::protobuf::Timestamp& ts) {
  if (ts.seconds() == 0 && ts.nanos() == 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixSeconds(ts.seconds()),
                          absl::LocalTimeZone());
}

std::string StateName(v1::JobState state) {
  std::string name = v1::JobState_Name(state);
  constexpr absl::string_view kPrefix = "JOB_STATE_";
  if (absl::StartsWith(name, kPrefix)) name = name.substr(kPrefix.size());
  return absl::AsciiStrToLower(name);
}

absl::Status Health(Context& c, const CommandArgs& args) {
  if (auto s = args.Check({"service"}); !s.ok()) return s;
  absl::Status s = c.client.CheckHealth(args.Get("service"));
  if (!s.ok()) return s;
  if (c.inv.json) {
    c.out << "{\"status\": \"SERVING\"}\n";
  } else {
    c.out << "SERVING\n";
  }
  return absl::OkStatus();
}

void PrintJobLine(std::ostream& out, const v1::Job& job) {
  out << std::left << std::setw(34) << job.id() << std::setw(11) << StateName(job.state())
      << std::setw(24) << job.request().program_name() << std::setw(10)
      << absl::StrFormat("%.1f", job.progress().best_score()) << FormatTime(job.create_time())
      << "\n";
}

absl::Status JobsList(Context& c, const CommandArgs& args) {
  if (auto s = args.Check({"state", "program", "page-size", "page-token"}); !s.ok()) return s;
  v1::ListJobsRequest request;
  for (const auto& state : args.All("state")) {
    v1::JobState parsed;
    if (!v1::JobState_Parse("JOB_STATE_" + absl::AsciiStrToUpper(state), &parsed)) {
      return UsageError(absl::StrCat("--state: unknown state \"", state,
                                     "\" (queued, running, succeeded, failed, cancelled)"));
    }
    request.add_states(parsed);
  }
  request.set_program_name(args.Get("program"));
  if (std::string size = args.Get("page-size"); !size.empty()) {
    int n;
    if (!absl::SimpleAtoi(size, &n) || n <= 0) {
      return UsageError("--page-size: must be a positive integer");
    }
    request.set_page_size(n);
  }
  request.set_page_token(args.Get("page-token"));
  grpc::ClientContext context;
  c.client.Prepare(&context);
  v1::ListJobsResponse response;
  absl::Status s =
      client::FromGrpcStatus(c.client.optimizer().ListJobs(&context, request, &response));
  if (!s.ok()) return s;
  if (c.inv.json) {
    c.out << ToJson(response);
    return absl::OkStatus();
  }
  c.out << std::left << std::setw(34) << "ID" << std::setw(11) << "STATE" << std::setw(24)
        << "PROGRAM" << std::setw(10) << "BEST"
        << "CREATED"
        << "\n";
  for (const auto& job : response.jobs()) PrintJobLine(c.out, job);
  if (response.jobs().empty()) c.out << "(no jobs)\n";
  if (!response.next_page_token().empty()) {
    c.out << "more: --page-token " << response.next_page_token() << "\n";
  }
  return absl::OkStatus();
}

void PrintJob(std::ostream& out, const v1::Job& job) {
  out << "id:         " << job.id() << "\n"
      << "state:      " << StateName(job.state()) << "\n"
      << "program:    " << job.request().program_name() << "\n"
      << "attempt:    " << job.attempt() << "\n"
      << "progress:   " << job.progress().trials_done() << "/" << job.progress().trials_total()
      << " trials, best " << absl::StrFormat("%.2f", job.progress().best_score()) << "\n"
      << "usage:      " << job.progress().usage().llm_calls() << " calls, "
      << absl::StrFormat("$%.4f", job.progress().usage().cost_usd()) << "\n"
      << "created:    " << FormatTime(job.create_time()) << "\n"
      << "ended:      " << FormatTime(job.end_time()) << "\n";
  if (job.end_reason() != v1::END_REASON_UNSPECIFIED) {
    out << "end reason: " << v1::EndReason_Name(job.end_reason()) << "\n";
  }
  if (!job.error().empty()) out << "error:      " << job.error() << "\n";
  if (job.progress().has_provider_wait()) {
    const v1::ProviderWait& w = job.progress().provider_wait();
    out << "paused:     waiting for the provider since " << FormatTime(w.since()) << ", next probe "
        << FormatTime(w.next_probe()) << ", gives up " << FormatTime(w.give_up_at()) << " ("
        << w.probes() << " failed probes)\n"
        << "            " << w.reason() << "\n";
  }
  if (job.has_result()) {
    out << "result:     " << job.result().name() << " v" << job.result().version() << "\n";
  }
}

absl::Status JobsGetOrCancel(Context& c, const CommandArgs& args, bool cancel) {
  if (auto s = args.Check({}); !s.ok()) return s;
  if (args.positional().size() != 1) {
    return UsageError(absl::StrCat("usage: elexirion jobs ", cancel ? "cancel" : "get", " JOB_ID"));
  }
  grpc::ClientContext context;
  c.client.Prepare(&context);
  v1::Job job;
  grpc::Status status;
  if (cancel) {
    v1::CancelJobRequest request;
    request.set_id(args.positional()[0]);
    status = c.client.optimizer().CancelJob(&context, request, &job);
  } else {
    v1::GetJobRequest request;
    request.set_id(args.positional()[0]);
    status = c.client.optimizer().GetJob(&context, request, &job);
  }
  absl::Status s = client::FromGrpcStatus(status);
  if (!s.ok()) return s;
  if (c.inv.json) {
    c.out << ToJson(job);
  } else {
    PrintJob(c.out, job);
  }
  return absl::OkStatus();
}

// --input key=value (a JSON value when it parses as one, else a string) and
// --input-json FILE (a JSON object), merged in order.
absl::StatusOr<google::protobuf::Struct> ParseInputs(const CommandArgs& args) {
  nlohmann::json inputs = nlohmann::json::object();
  for (const auto& path : args.All("input-json")) {
    auto text = ReadTextFile("--input-json", path);
    if (!text.ok()) return text.status();
    auto json = nlohmann::json::parse(*text, nullptr, false);
    if (json.is_discarded() || !json.is_object()) {
      return UsageError(absl::StrCat("--input-json: ", path, " must hold a JSON object"));
    }
    inputs.update(json);
  }
  for (const auto& kv : args.All("input")) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return UsageError(absl::StrCat("--input: expected key=value, got \"", kv, "\""));
    }
    std::string value = kv.substr(eq + 1);
    auto json = nlohmann::json::parse(value, nullptr, false);
    inputs[kv.substr(0, eq)] =
        json.is_discarded() || json.is_string() ? nlohmann::json(value) : json;
  }
  google::protobuf::Struct out;
  auto status = google::protobuf::util::JsonStringToMessage(inputs.dump(), &out);
  if (!status.ok()) return UsageError("--input: not representable");
  return out;
}

// -f FILE (the YAML inline) or --name NAME (a registered pipeline); `usage` otherwise.
absl::Status ParsePipelineRef(const CommandArgs& args, const char* usage, v1::PipelineRef* ref) {
  const std::string file = args.Get("file", args.Get("f"));
  if (!file.empty()) {
    auto yaml = ReadTextFile("-f", file);
    if (!yaml.ok()) return yaml.status();
    ref->set_yaml(*yaml);
  } else if (!args.Get("name").empty()) {
    ref->set_name(args.Get("name"));
  } else {
    return UsageError(usage);
  }
  return absl::OkStatus();
}

// --max-calls N and --max-usd X.
absl::Status ParseBudget(const CommandArgs& args, v1::Budget* budget) {
  if (std::string n = args.Get("max-calls"); !n.empty()) {
    int64_t calls;
    if (!absl::SimpleAtoi(n, &calls)) return UsageError("--max-calls: integer");
    budget->set_max_llm_calls(calls);
  }
  if (std::string usd = args.Get("max-usd"); !usd.empty()) {
    double v;
    if (!absl::SimpleAtod(usd, &v)) return UsageError("--max-usd: number");
    budget->set_max_usd(v);
  }
  return absl::OkStatus();
}

absl::Status Run(Context& c, const CommandArgs& args) {
  if (auto s = args.Check({"file", "f", "name", "input", "input-json", "program", "program-version",
                           "provider", "model", "prompts", "no-cache", "max-calls", "max-usd"});
      !s.ok()) {
    return s;
  }
  v1::ExecutePipelineRequest request;
  if (auto st =
          ParsePipelineRef(args,
                           "usage: elexirion run (-f pipeline.yaml | --name NAME) [--input k=v]... "
                           "[--input-json FILE] [--program NAME [--program-version N]]",
                           request.mutable_pipeline());
      !st.ok()) {
    return st;
  }
  auto inputs = ParseInputs(args);
  if (!inputs.ok()) return inputs.status();
  *request.mutable_inputs() = *inputs;
  if (!args.Get("program").empty()) {
    request.mutable_program()->set_name(args.Get("program"));
    if (std::string v = args.Get("program-version"); !v.empty()) {
      int64_t version;
      if (!absl::SimpleAtoi(v, &version)) {
        return UsageError("--program-version: must be an integer");
      }
      request.mutable_program()->set_version(version);
    }
  }
  request.mutable_lm()->set_provider(args.Get("provider"));
  request.mutable_lm()->set_model(args.Get("model"));
  request.set_include_prompts(args.Has("prompts"));
  request.set_no_cache(args.Has("no-cache"));
  if (auto st = ParseBudget(args, request.mutable_budget()); !st.ok()) return st;
  grpc::ClientContext context;
  // A pipeline's LLM steps easily take longer than the 30 s other calls get: without
  // --timeout, the server's execution limit (pipeline.default_execute_timeout, 10m) applies.
  c.client.Prepare(&context, c.inv.timeout_given ? c.inv.timeout : kRunTimeout);
  v1::ExecutePipelineResponse response;
  absl::Status s =
      client::FromGrpcStatus(c.client.pipelines().ExecutePipeline(&context, request, &response));
  if (!s.ok()) return s;
  if (c.inv.json) {
    c.out << ToJson(response);
  } else {
    for (const auto& step : response.steps()) {
      c.out << "== step " << step.name() << " (" << step.type() << ", "
            << absl::AsciiStrToLower(
                   v1::StepResult::Status_Name(step.status()).substr(std::strlen("STATUS_")))
            << ", " << (step.provider().empty() ? "-" : step.provider()) << "/"
            << (step.model().empty() ? "-" : step.model())
            << (step.simulated() ? ", simulated" : "") << ")\n";
      if (!step.rendered_prompt().empty()) {
        c.out << "-- prompt:\n" << step.rendered_prompt() << "\n-- response:\n";
      }
      // The failed step's error is the pipeline's, printed once on stderr by the caller.
      if (!step.error().empty() && !absl::StrContains(response.error(), step.error())) {
        c.out << "error: " << step.error() << "\n";
      }
      c.out << step.text() << "\n";
    }
    c.out << "== " << (response.success() ? "succeeded" : "failed") << ": "
          << response.usage().llm_calls() << " calls, " << response.usage().cache_hits()
          << " cached, " << response.usage().input_tokens() << "+"
          << response.usage().output_tokens() << " tokens, "
          << absl::StrFormat("$%.4f, %.2fs", response.usage().cost_usd(),
                             response.duration_seconds())
          << "\n";
  }
  return response.success() ? absl::OkStatus()
                            : absl::AbortedError("pipeline failed: " + response.error());
}

absl::Status PipelinesRegister(Context& c, const CommandArgs& args) {
  if (auto s = args.Check({"file", "f"}); !s.ok()) return s;
  std::string file = args.Get("file", args.Get("f"));
  if (args.positional().size() != 1 || file.empty()) {
    return UsageError("usage: elexirion pipelines register NAME -f FILE");
  }
  auto yaml = ReadTextFile("-f", file);
  if (!yaml.ok()) return yaml.status();
  v1::RegisterPipelineRequest request;
  request.mutable_pipeline()->set_name(args.positional()[0]);
  request.mutable_pipeline()->set_yaml(*yaml);
  grpc::ClientContext context;
  c.client.Prepare(&context);
  v1::Pipeline pipeline;
  absl::Status s =
      client::FromGrpcStatus(c.client.pipelines().RegisterPipeline(&context, request, &pipeline));
  if (!s.ok()) return s;
  if (c.inv.json) {
    c.out << ToJson(pipeline);
  } else {
    c.out << "registered " << pipeline.name() << " revision " << pipeline.revision() << "\n";
    for (const auto& step : pipeline.steps()) {
      c.out << "  step " << step.name() << " (" << step.type() << "): " << step.signature() << "\n";
    }
  }
  return absl::OkStatus();
}

absl::Status PipelinesList(Context& c, const CommandArgs& args) {
  if (auto s = args.Check({}); !s.ok()) return s;
  grpc::ClientContext context;
  c.client.Prepare(&context);
  v1::ListPipelinesResponse response;
  absl::Status s = client::FromGrpcStatus(
      c.client.pipelines().ListPipelines(&context, v1::ListPipelinesRequest(), &response));
  if (!s.ok()) return s;
  if (c.inv.json) {
    c.out << ToJson(response);
    return absl::OkStatus();
  }
  for (const auto& p : response.pipelines()) {
    c.out << p.name() << "  revision " << p.revision() << "  " << p.steps_size() << " LLM steps\n";
  }
  if (response.pipelines().empty()) c.out << "(no pipelines)\n";
  return absl::OkStatus();
}

// A YAML or JSON file as JSON (YAML is a superset; converted node by node).
nlohmann::json YamlToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& kv : node) out[kv.first.as<std::string>()] = YamlToJson(kv.second);
      return out;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& item : node) out.push_back(YamlToJson(item));
      return out;
    }
    case YAML::NodeType::Scalar: {
      const std::string& text = node.Scalar();
      if (node.Tag() != "!") {  // unquoted: numbers and booleans keep their type
        auto parsed = nlohmann::json::parse(text, nullptr, false);
        if (!parsed.is_discarded() && !parsed.is_string() && !parsed.is_object() &&
            !parsed.is_array()) {
          return parsed;
        }
      }
      return text;
    }
    default:
      return nullptr;
  }
}

absl::StatusOr<nlohmann::json> ReadYamlOrJson(const std::string& flag, const std::string& path) {
  auto text = ReadTextFile(flag, path);
  if (!text.ok()) return text.status();
  try {
    return YamlToJson(YAML::Load(*text));
  } catch (const YAML::Exception& e) {
    return UsageError(absl::StrCat(flag, ": ", path, ": line ", e.mark.line + 1, ": ", e.msg));
  }
}

// Training examples: a directory of JSON files in the design document's layout ({id, input,
// expected_output, metadata, created_at}), a .jsonl file, or a .json array.
absl::StatusOr<v1::InlineExamples> ReadTrainset(const std::string& flag, const std::string& path) {
  std::vector<nlohmann::json> rows;
  if (std::filesystem::is_directory(path)) {
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(path)) {
      if (entry.is_regular_file() && entry.path().extension() == ".json") {
        files.push_back(entry.path());
      }
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      auto text = ReadTextFile(flag, file.string());
      if (!text.ok()) return text.status();
      auto json = nlohmann::json::parse(*text, nullptr, false);
      if (json.is_discarded()) {
        return UsageError(absl::StrCat(flag, ": ", file.string(), ": not valid JSON"));
      }
      rows.push_back(std::move(json));
    }
  } else {
    auto text = ReadTextFile(flag, path);
    if (!text.ok()) return text.status();
    auto whole = nlohmann::json::parse(*text, nullptr, false);
    if (!whole.is_discarded() && whole.is_array()) {
      for (auto& row : whole) rows.push_back(row);
    } else {
      std::istringstream lines(*text);
      int n = 0;
      for (std::string line; std::getline(lines, line);) {
        ++n;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        auto json = nlohmann::json::parse(line, nullptr, false);
        if (json.is_discarded()) {
          return UsageError(absl::StrCat(flag, ": ", path, ": line ", n, ": not valid JSON"));
        }
        rows.push_back(std::move(json));
      }
    }
  }
  v1::InlineExamples examples;
  for (size_t i = 0; i < rows.size(); ++i) {
    v1::Example* example = examples.add_examples();
    auto status = google::protobuf::util::JsonStringToMessage(rows[i].dump(), example);
    if (!status.ok()) {
      return UsageError(absl::StrCat(flag, ": example ", i + 1, ": ", status.message().ToString()));
    }
  }
  if (examples.examples().empty()) {
    return UsageError(absl::StrCat(flag, ": no examples in ", path));
  }
  return examples;
}

std::string Bar(double fraction, int width) {
  int filled = static_cast<int>(std::clamp(fraction, 0.0, 1.0) * width);
  return std::string(static_cast<size_t>(filled), '#') +
         std::string(static_cast<size_t>(width - filled), '-');
}

// ETA of a progress snapshot, when the server knows one.
std::string EtaText(const v1::JobProgress& progress) {
  return progress.eta_seconds() > 0 ? absl::StrFormat("  ETA %.0fs", progress.eta_seconds()) : "";
}

// Where the live progress line goes: stderr on a terminal, nowhere otherwise (the escape
// codes and a redraw per event would only clutter a log or a pipe).
std::ostream& ProgressLine() {
  static std::ostream* stream = [] {
    static std::ostream discard(nullptr);
    return ::isatty(STDERR_FILENO) ? &std::cerr : &discard;
  }();
  return *stream;
}

void DrawBootstrap(const v1::ProgressEvent::BootstrapProgress& b, const v1::JobProgress& progress) {
  ProgressLine() << "\r\033[Kbootstrapping " << b.step() << " " << b.done() << "/" << b.total()
                 << ", " << b.accepted() << " accepted" << EtaText(progress) << std::flush;
}

// Follows a job's events, drawing a progress line on stderr (a terminal) and printing state
// changes; returns the job as it ended.
absl::StatusOr<v1::Job> Follow(Context& c, const std::string& job_id) {
  int64_t last_seq = 0;
  v1::JobProgress progress;
  std::optional<v1::ProgressEvent::BootstrapProgress> bootstrap;
  bool ended = false;
  for (int attempt = 0; attempt < 100 && !ended; ++attempt) {
    grpc::ClientContext context;
    c.client.Prepare(&context, absl::InfiniteDuration());
    v1::StreamProgressRequest request;
    request.set_job_id(job_id);
    request.set_after_seq(last_seq);
    // Batches: a watcher that falls behind catches up in a few messages.
    auto reader = c.client.optimizer().StreamProgressBatches(&context, request);
    v1::ProgressEventBatch batch;
    while (reader->Read(&batch)) {
      for (const v1::ProgressEvent& event : batch.events()) {
        last_seq = event.seq();
        if (c.inv.json) {
          c.out << ToJson(event);
          continue;
        }
        switch (event.kind_case()) {
          case v1::ProgressEvent::kStateChanged: {
            const auto& changed = event.state_changed();
            const std::string state = StateName(changed.state());
            ProgressLine() << "\r\033[K";
            // The terminal event's message may only repeat the state ("failed (failed)").
            c.out << "job " << job_id << ": " << state
                  << (changed.message().empty() || changed.message() == state
                          ? ""
                          : " (" + changed.message() + ")")
                  << "\n";
            break;
          }
          case v1::ProgressEvent::kTrialFinished:
            progress.set_trials_done(
                std::max(progress.trials_done(), event.trial_finished().trial()));
            break;
          case v1::ProgressEvent::kNewBest:
            progress.set_best_score(event.new_best().score());
            break;
          case v1::ProgressEvent::kUsage:
            progress = event.usage();
            // Without trials (bootstrapping optimizers) the bootstrap line is the progress
            // line; the snapshot only refreshes its ETA.
            if (progress.trials_total() == 0 && bootstrap.has_value()) {
              DrawBootstrap(*bootstrap, progress);
              continue;
            }
            break;
          case v1::ProgressEvent::kProviderWait:
            std::cerr << "\r\033[K";
            c.out << "job " << job_id << ": paused, provider unavailable (next probe "
                  << FormatTime(event.provider_wait().next_probe())
                  << "): " << event.provider_wait().reason() << "\n";
            continue;
          case v1::ProgressEvent::kProviderResumed:
            std::cerr << "\r\033[K";
            c.out << "job " << job_id << ": resumed after "
                  << absl::StrFormat("%.0fs", event.provider_resumed().waited_seconds())
                  << " waiting for the provider\n";
            continue;
          case v1::ProgressEvent::kBootstrap:
            bootstrap = event.bootstrap();
            DrawBootstrap(*bootstrap, progress);
            continue;
          case v1::ProgressEvent::kSummary: {
            const auto& s = event.summary();
            ProgressLine() << "\r\033[K";
            c.out << absl::StrFormat(
                "baseline %.1f%% -> optimized %.1f%%  (%d calls, %d tokens, $%.4f)\n",
                s.baseline_score(), s.best_score(), s.usage().llm_calls(),
                s.usage().input_tokens() + s.usage().output_tokens(), s.usage().cost_usd());
            if (!s.program_name().empty()) {
              c.out << "program " << s.program_name() << " v" << s.program_version()
                    << (s.promoted() ? " (promoted to production)" : "") << "\n";
            }
            continue;
          }
          default:
            break;
        }
        if (!event.has_state_changed()) {
          double fraction =
              progress.trials_total() > 0
                  ? static_cast<double>(progress.trials_done()) / progress.trials_total()
                  : 0;
          ProgressLine() << "\r\033[K[" << Bar(fraction, 20) << "] " << progress.trials_done()
                         << "/" << progress.trials_total() << " trials  best "
                         << absl::StrFormat("%.1f", progress.best_score()) << "  calls "
                         << progress.usage().llm_calls() << "  "
                         << absl::StrFormat("$%.4f", progress.usage().cost_usd());
          ProgressLine() << EtaText(progress) << std::flush;
        }
      }
    }
    grpc::Status status = reader->Finish();
    if (status.ok()) {
      ended = true;
    } else if (status.error_code() != grpc::StatusCode::UNAVAILABLE) {
      return client::FromGrpcStatus(status);
    } else {
      absl::SleepFor(absl::Seconds(1));  // server restarting: reconnect from last_seq
    }
  }
  grpc::ClientContext context;
  c.client.Prepare(&context);
  v1::GetJobRequest get;
  get.set_id(job_id);
  v1::Job job;
  absl::Status s = client::FromGrpcStatus(c.client.optimizer().GetJob(&context, get, &job));
  if (!s.ok()) return s;
  return job;
}

absl::Status Optimize(Context& c, const CommandArgs& args) {
  if (auto s = args.Check({"file", "f", "name", "trainset", "valset", "dataset", "metric",
                           "optimizer", "param", "program", "follow", "request-id", "max-calls",
                           "max-usd", "seed", "provider", "model"});
      !s.ok()) {
    return s;
  }
  v1::OptimizeModuleRequest request;
  const std::string file = args.Get("file", args.Get("f"));
  if (auto st = ParsePipelineRef(
          args,
          "usage: elexirion optimize (-f pipeline.yaml | --name NAME) --trainset DIR|FILE "
          "--metric metric.yaml --optimizer NAME [--param key=value]... [--program NAME] "
          "[--follow]",
          request.mutable_pipeline());
      !st.ok()) {
    return st;
  }
  if (!args.Get("dataset").empty()) {
    request.mutable_trainset()->set_dataset(args.Get("dataset"));
  } else if (!args.Get("trainset").empty()) {
    auto examples = ReadTrainset("--trainset", args.Get("trainset"));
    if (!examples.ok()) return examples.status();
    *request.mutable_trainset()->mutable_inline_() = *examples;
  } else {
    return UsageError("--trainset: required (a directory of JSON examples or a JSONL file)");
  }
  if (!args.Get("valset").empty()) {
    auto examples = ReadTrainset("--valset", args.Get("valset"));
    if (!examples.ok()) return examples.status();
    *request.mutable_valset()->mutable_inline_() = *examples;
  }
  if (args.Get("metric").empty()) return UsageError("--metric: required (a metric YAML file)");
  auto metric = ReadYamlOrJson("--metric", args.Get("metric"));
  if (!metric.ok()) return metric.status();
  if (auto st =
          google::protobuf::util::JsonStringToMessage(metric->dump(), request.mutable_metric());
      !st.ok()) {
    return UsageError(absl::StrCat("--metric: ", st.message().ToString()));
  }
  auto spec_json =
      OptimizerSpecJson(args.Get("optimizer", "bootstrap_few_shot"), args.All("param"));
  if (!spec_json.ok()) return UsageError(spec_json.status().message());
  nlohmann::json& spec = *spec_json;
  if (!args.Get("seed").empty()) spec["seed"] = args.Get("seed");
  if (auto st =
          google::protobuf::util::JsonStringToMessage(spec.dump(), request.mutable_optimizer());
      !st.ok()) {
    return UsageError(absl::StrCat("--optimizer/--param: ", st.message().ToString()));
  }
  std::string program = args.Get("program");
  if (program.empty() && !file.empty()) {
    program = std::filesystem::path(file).stem().string();
    if (auto st = CheckUtf8("-f: the file name (the default --program)", program); !st.ok()) {
      return st;
    }
  }
  if (program.empty()) program = args.Get("name");
  request.set_program_name(program);
  request.set_request_id(args.Get("request-id"));
  request.mutable_lm()->set_provider(args.Get("provider"));
  request.mutable_lm()->set_model(args.Get("model"));
  if (auto st = ParseBudget(args, request.mutable_budget()); !st.ok()) return st;
  grpc::ClientContext context;
  c.client.Prepare(&context);
  v1::Job job;
  absl::Status s =
      client::FromGrpcStatus(c.client.optimizer().OptimizeModule(&context, request, &job));
  if (!s.ok()) return s;
  if (!args.Has("follow")) {
    if (c.inv.json) {
      c.out << ToJson(job);
    } else {
      c.out << "job " << job.id() << " " << StateName(job.state()) << "\n";
    }
    return absl::OkStatus();
  }
  if (!c.inv.json) c.out << "job " << job.id() << " submitted\n";
  auto ended = Follow(c, job.id());
  if (!ended.ok()) return ended.status();
  if (ended->state() != v1::JOB_STATE_SUCCEEDED) {
    return absl::AbortedError(absl::StrCat("job ", StateName(ended->state()),
                                           ended->error().empty() ? "" : ": " + ended->error()));
  }
  return absl::OkStatus();
}

absl::Status JobsWatch(Context& c, const CommandArgs& args) {
  if (auto s = args.Check({}); !s.ok()) return s;
  if (args.positional().size() != 1) return UsageError("usage: elexirion jobs watch JOB_ID");
  auto job = Follow(c, args.positional()[0]);
  if (!job.ok()) return job.status();
  if (!c.inv.json) PrintJob(c.out, *job);
  return absl::OkStatus();
}

absl::Status ProgramsGet(Context& c, const CommandArgs& args) {
  if (auto s = args.Check({"version", "label", "yaml", "dspy"}); !s.ok()) return s;
  if (args.positional().size() != 1) {
    return UsageError(
        "usage: elexirion programs get NAME [--version N | --label L] "
        "[--yaml | --dspy]");
  }
  v1::GetProgramRequest request;
  request.mutable_program()->set_name(args.positional()[0]);
  if (std::string v = args.Get("version"); !v.empty()) {
    int64_t version;
    if (!absl::SimpleAtoi(v, &version)) return UsageError("--version: integer");
    request.mutable_program()->set_version(version);
  } else if (!args.Get("label").empty()) {
    request.mutable_program()->set_label(args.Get("label"));
  }
  grpc::ClientContext context;
  c.client.Prepare(&context);
  v1::Program program;
  absl::Status s =
      client::FromGrpcStatus(c.client.programs().GetProgram(&context, request, &program));
  if (!s.ok()) return s;
  if (args.Has("yaml")) {
    c.out << program.optimized_yaml();
  } else if (args.Has("dspy")) {
    c.out << program.dspy_json();
  } else if (c.inv.json) {
    c.out << ToJson(program);
  } else {
    c.out << program.name() << " v" << program.version()
          << (program.production() ? " (production)" : "") << "  optimizer " << program.optimizer()
          << "  job " << program.job_id() << "\n"
          << absl::StrFormat("baseline %.1f%%  validation %.1f%%\n", program.scores().baseline(),
                             program.scores().validation());
  }
  return absl::OkStatus();
}

absl::Status ProgramsList(Context& c, const CommandArgs& args) {
  if (auto s = args.Check({}); !s.ok()) return s;
  v1::ListProgramsRequest request;
  if (!args.positional().empty()) request.set_name(args.positional()[0]);
  grpc::ClientContext context;
  c.client.Prepare(&context);
  v1::ListProgramsResponse response;
  absl::Status s =
      client::FromGrpcStatus(c.client.programs().ListPrograms(&context, request, &response));
  if (!s.ok()) return s;
  if (c.inv.json) {
    c.out << ToJson(response);
    return absl::OkStatus();
  }
  for (const auto& p : response.programs()) {
    c.out << p.name() << " v" << p.version() << (p.production() ? " (production)" : "")
          << absl::StrFormat("  validation %.1f%%", p.scores().validation()) << "\n";
  }
  if (response.programs().empty()) c.out << "(no programs)\n";
  return absl::OkStatus();
}

absl::Status ProgramsPromote(Context& c, const CommandArgs& args) {
  if (auto s = args.Check({}); !s.ok()) return s;
  int64_t version;
  if (args.positional().size() != 2 || !absl::SimpleAtoi(args.positional()[1], &version)) {
    return UsageError("usage: elexirion programs promote NAME VERSION");
  }
  v1::PromoteProgramRequest request;
  request.set_name(args.positional()[0]);
  request.set_version(version);
  grpc::ClientContext context;
  c.client.Prepare(&context);
  v1::Program program;
  absl::Status s =
      client::FromGrpcStatus(c.client.programs().PromoteProgram(&context, request, &program));
  if (!s.ok()) return s;
  c.out << program.name() << " v" << program.version() << " is now production\n";
  return absl::OkStatus();
}

// The command table, in the order `elexirion --help` lists it.
const std::vector<Command>& Commands() {
  static const auto* commands = [] {
    auto* table = new std::vector<Command>{
        {"health", Health, "health [--service NAME]", "check the server's health (grpc.health.v1)",
         ""},
        {"run", Run,
         "run (-f pipeline.yaml | --name NAME) [--input key=value]... [--input-json FILE]\n"
         "    [--program NAME [--program-version N]] [--provider P] [--model M]\n"
         "    [--prompts] [--no-cache] [--max-calls N] [--max-usd X]",
         "run a pipeline on one input",
         "--input key=value: a JSON value when it parses as one, else a string; --input-json\n"
         "  FILE: a JSON object; merged in order. --program runs an optimized program (its\n"
         "  production version unless --program-version). --prompts prints each step's\n"
         "  rendered prompt. Exit 1 when the pipeline fails (the error on stderr)."},
        {"pipelines register", PipelinesRegister, "pipelines register NAME -f FILE",
         "register (or update) a pipeline", ""},
        {"pipelines list", PipelinesList, "pipelines list", "list registered pipelines", ""},
        {"optimize", Optimize,
         "optimize (-f pipeline.yaml | --name NAME) (--trainset DIR|FILE | --dataset NAME)\n"
         "    --metric metric.yaml [--valset DIR|FILE] [--optimizer NAME] [--param key=value]...\n"
         "    [--program NAME] [--follow] [--request-id ID] [--provider P] [--model M]\n"
         "    [--max-calls N] [--max-usd X] [--seed N]",
         "start an optimization job (and follow it)",
         "--trainset/--valset: a directory of {id}.json examples (design layout), a JSONL file\n"
         "  or a JSON array. --metric: a MetricSpec in YAML, e.g.\n"
         "  examples/code_analysis/metric.yaml. --optimizer (default bootstrap_few_shot) and\n"
         "  --param key=value set the optimizer. --follow draws the live progress."},
        {"jobs list", JobsList,
         "jobs list [--state S]... [--program NAME] [--page-size N] [--page-token T]",
         "list optimization jobs", ""},
        {"jobs get", [](Context& c, const CommandArgs& a) { return JobsGetOrCancel(c, a, false); },
         "jobs get JOB_ID", "show one job", ""},
        {"jobs cancel",
         [](Context& c, const CommandArgs& a) { return JobsGetOrCancel(c, a, true); },
         "jobs cancel JOB_ID", "cancel a queued or running job", ""},
        {"jobs watch", JobsWatch, "jobs watch JOB_ID", "follow a job's live progress", ""},
        {"programs list", ProgramsList, "programs list [NAME]", "list optimized programs", ""},
        {"programs get", ProgramsGet,
         "programs get NAME [--version N | --label latest|production] [--yaml | --dspy]",
         "show a program, its optimized YAML or its DSPy JSON", ""},
        {"programs promote", ProgramsPromote, "programs promote NAME VERSION",
         "make a version production (rollback too)", ""},
    };
    AddDatasetCommands(table);
    table->push_back({"usage", UsageStatsCommand, "usage PIPELINE [--window 24h]",
                      "executions, success, quality, latency, new examples",
                      "--window: e.g. 24h (default), 90m, 7d. New examples are counted since the\n"
                      "  last optimization."});
    return table;
  }();
  return *commands;
}

const Command* FindCommand(absl::string_view name) {
  for (const Command& command : Commands()) {
    if (command.name == name) return &command;
  }
  return nullptr;
}

bool IsHelpFlag(const std::string& word) { return word == "--help" || word == "-h"; }

// The command the words name ("jobs list ...", "health ..."), and how many words that took.
std::pair<const Command*, size_t> Resolve(const Args& words) {
  if (words.size() >= 2) {
    if (const Command* command = FindCommand(words[0] + " " + words[1])) return {command, 2};
  }
  if (!words.empty()) {
    if (const Command* command = FindCommand(words[0])) return {command, 1};
  }
  return {nullptr, 0};
}

// What the words are not: an unknown command, or a group without its verb. Exit code 2.
int UnknownCommand(const Args& words, std::ostream& err) {
  std::string typed = words[0];
  if (words.size() >= 2 && words[1].rfind('-', 0) != 0) typed += " " + words[1];
  const std::string group_usage = GroupUsage(Commands(), words[0]);
  if (!group_usage.empty() && typed == words[0]) {
    err << "elexirion: " << words[0] << ": which command?\n\n" << group_usage;
    return 2;
  }
  err << "elexirion: unknown command \"" << typed << "\"";
  if (auto suggestion = Suggest(Commands(), typed)) {
    err << "; did you mean \"" << *suggestion << "\"?";
  }
  err << "\n";
  if (!group_usage.empty()) {
    err << "\n" << group_usage;
  } else {
    err << "`elexirion --help` lists the commands.\n";
  }
  return 2;
}

// Prints the help the words ask for (after "help", or with --help/-h anywhere): the whole
// list, a group's or a command's usage. Exit code 0, or 2 for an unknown command.
int Help(const Args& words, std::ostream& out, std::ostream& err) {
  Args topic;
  for (const auto& word : words) {
    if (!IsHelpFlag(word) && word != "help") topic.push_back(word);
  }
  if (topic.empty()) {
    out << Usage();
    return 0;
  }
  if (const Command* command = Resolve(topic).first) {
    out << CommandUsage(*command);
    return 0;
  }
  if (std::string group = GroupUsage(Commands(), topic[0]); !group.empty()) {
    out << group;
    return 0;
  }
  return UnknownCommand(topic, err);
}

// Every word the CLI may send is a proto string and must be UTF-8 (the words naming files
// need not be: they are read, not sent).
absl::Status CheckWordsUtf8(const Args& words) {
  static const auto* kPathFlags = new std::vector<std::string>{
      "-f", "--file", "--input-json", "--trainset", "--valset", "--metric", "--jsonl", "--dir"};
  auto is_path_flag = [](const std::string& word) {
    return std::find(kPathFlags->begin(), kPathFlags->end(), word.substr(0, word.find('='))) !=
           kPathFlags->end();
  };
  for (size_t i = 0; i < words.size(); ++i) {
    if (is_path_flag(words[i]) || (i > 0 && is_path_flag(words[i - 1]))) continue;
    std::string what = absl::StrCat("argument ", i + 1);
    if (words[i].rfind("--", 0) == 0) {
      what = words[i].substr(0, words[i].find('='));
    } else if (i > 0 && words[i - 1].rfind("--", 0) == 0 &&
               words[i - 1].find('=') == std::string::npos &&
               !CommandArgs::IsSwitch(words[i - 1].substr(2))) {
      what = words[i - 1];
    }
    if (absl::Status s = CheckUtf8(what, words[i]); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<std::string> CommandNames() {
  std::vector<std::string> names;
  for (const Command& command : Commands()) names.push_back(command.name);
  return names;
}

std::string Usage() { return TopUsage(Commands()); }

absl::StatusOr<Invocation> ParseInvocation(const std::vector<std::string>& args) {
  Invocation inv;
  const char* addr = std::getenv("ELEXIRION_ADDR");
  inv.address = addr != nullptr ? addr : "127.0.0.1:50051";
  const char* token = std::getenv("ELEXIRION_TOKEN");
  if (token != nullptr) inv.token = token;
  size_t i = 0;
  auto value = [&](const std::string& flag, std::string* out) -> absl::Status {
    const std::string& arg = args[i];
    size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      *out = arg.substr(eq + 1);
      return absl::OkStatus();
    }
    if (i + 1 >= args.size()) return UsageError(flag + ": missing value");
    *out = args[++i];
    return absl::OkStatus();
  };
  for (; i < args.size(); ++i) {
    const std::string& arg = args[i];
    auto is = [&](const char* flag) {
      return arg == flag || arg.rfind(std::string(flag) + "=", 0) == 0;
    };
    if (is("--addr")) {
      if (auto s = value("--addr", &inv.address); !s.ok()) return s;
    } else if (is("--token")) {
      if (auto s = value("--token", &inv.token); !s.ok()) return s;
    } else if (is("--timeout")) {
      std::string t;
      if (auto s = value("--timeout", &t); !s.ok()) return s;
      if (!absl::ParseDuration(t, &inv.timeout) || inv.timeout <= absl::ZeroDuration()) {
        return UsageError("--timeout: must be a duration like 30s");
      }
      inv.timeout_given = true;
    } else if (arg == "--json") {
      inv.json = true;
    } else if (inv.words.empty() && arg.rfind("--", 0) == 0 && arg != "--help") {
      return UsageError(arg + ": unknown flag");
    } else {
      // The command's words; global flags may follow it too (`elexirion jobs list --json`):
      // no command has an option of theirs.
      inv.words.push_back(arg);
    }
  }
  return inv;
}

int Run(const Invocation& inv, std::ostream& out, std::ostream& err) {
  const Args& words = inv.words;
  if (words.empty()) {
    err << Usage();
    return 2;
  }
  if (words[0] == "help" || std::any_of(words.begin(), words.end(), IsHelpFlag)) {
    return Help(words, out, err);
  }
  auto [command, consumed] = Resolve(words);
  if (command == nullptr) return UnknownCommand(words, err);
  const Args rest(words.begin() + static_cast<long>(consumed), words.end());
  absl::Status s = CheckWordsUtf8(rest);
  if (s.ok()) {
    client::Client::Options options;
    options.address = inv.address;
    options.token = inv.token;
    options.deadline = inv.timeout;
    auto client = client::Client::Create(options);
    if (!client.ok()) {
      err << "elexirion: " << client.status().message() << "\n";
      return 2;
    }
    Context context{inv, **client, out};
    s = command->handler(context, CommandArgs(rest));
  }
  if (s.ok()) return 0;
  if (IsUsageError(s)) {
    err << "elexirion: " << s.message() << "\n";
    if (!absl::StartsWith(s.message(), "usage: ")) {
      err << "(`elexirion " << command->name << " --help` shows its usage)\n";
    }
    return 2;
  }
  err << "elexirion: " << absl::StatusCodeToString(s.code()) << ": " << s.message() << "\n";
  return 1;
}

}  // namespace elexirion::cli
