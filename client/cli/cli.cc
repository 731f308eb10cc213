#include "client/cli/cli.h"

#include <cstdlib>
#include <iomanip>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "google/protobuf/util/json_util.h"

namespace elexirion::cli {
namespace {

using Args = std::vector<std::string>;

std::string ToJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

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

// Reads `--name value` / `--name=value` options of a sub-command; positional words stay.
class CommandArgs {
 public:
  explicit CommandArgs(const Args& words) {
    for (size_t i = 0; i < words.size(); ++i) {
      const std::string& w = words[i];
      if (w.rfind("--", 0) == 0) {
        size_t eq = w.find('=');
        if (eq != std::string::npos) {
          options_.emplace_back(w.substr(2, eq - 2), w.substr(eq + 1));
        } else if (i + 1 < words.size()) {
          options_.emplace_back(w.substr(2), words[++i]);
        } else {
          options_.emplace_back(w.substr(2), "");
          missing_value_ = w;
        }
      } else {
        positional_.push_back(w);
      }
    }
  }
  const Args& positional() const { return positional_; }
  std::vector<std::string> All(const std::string& name) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : options_) {
      if (k == name) out.push_back(v);
    }
    return out;
  }
  std::string Get(const std::string& name, const std::string& fallback = "") const {
    auto all = All(name);
    return all.empty() ? fallback : all.back();
  }
  // INVALID_ARGUMENT for an option not in `known` or without a value.
  absl::Status Check(const std::vector<std::string>& known) const {
    if (!missing_value_.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(missing_value_, ": missing value"));
    }
    for (const auto& [k, v] : options_) {
      if (std::find(known.begin(), known.end(), k) == known.end()) {
        return absl::InvalidArgumentError(absl::StrCat("--", k, ": unknown option"));
      }
    }
    return absl::OkStatus();
  }

 private:
  Args positional_;
  std::vector<std::pair<std::string, std::string>> options_;
  std::string missing_value_;
};

struct Context {
  const Invocation& inv;
  client::Client& client;
  std::ostream& out;
};

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
      return absl::InvalidArgumentError(absl::StrCat(
          "--state: unknown state \"", state,
          "\" (queued, running, succeeded, failed, cancelled)"));
    }
    request.add_states(parsed);
  }
  request.set_program_name(args.Get("program"));
  if (std::string size = args.Get("page-size"); !size.empty()) {
    int n;
    if (!absl::SimpleAtoi(size, &n) || n <= 0) {
      return absl::InvalidArgumentError("--page-size: must be a positive integer");
    }
    request.set_page_size(n);
  }
  request.set_page_token(args.Get("page-token"));
  grpc::ClientContext context;
  c.client.Prepare(&context);
  v1::ListJobsResponse response;
  absl::Status s = client::FromGrpcStatus(c.client.optimizer().ListJobs(&context, request,
                                                                        &response));
  if (!s.ok()) return s;
  if (c.inv.json) {
    c.out << ToJson(response);
    return absl::OkStatus();
  }
  c.out << std::left << std::setw(34) << "ID" << std::setw(11) << "STATE" << std::setw(24)
        << "PROGRAM" << std::setw(10) << "BEST" << "CREATED" << "\n";
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
  if (job.has_result()) {
    out << "result:     " << job.result().name() << " v" << job.result().version() << "\n";
  }
}

absl::Status JobsGetOrCancel(Context& c, const CommandArgs& args, bool cancel) {
  if (auto s = args.Check({}); !s.ok()) return s;
  if (args.positional().size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("usage: elexirion jobs ", cancel ? "cancel" : "get", " JOB_ID"));
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

using Handler = std::function<absl::Status(Context&, const CommandArgs&)>;

// Command table: "group verb" or a single word.
const std::map<std::string, Handler>& Commands() {
  static const auto* commands = new std::map<std::string, Handler>{
      {"health", Health},
      {"jobs list", JobsList},
      {"jobs get", [](Context& c, const CommandArgs& a) { return JobsGetOrCancel(c, a, false); }},
      {"jobs cancel",
       [](Context& c, const CommandArgs& a) { return JobsGetOrCancel(c, a, true); }},
  };
  return *commands;
}

}  // namespace

std::string Usage() {
  return "usage: elexirion [--addr HOST:PORT] [--token TOKEN] [--json] [--timeout 30s] COMMAND\n"
         "\n"
         "commands:\n"
         "  health [--service NAME]          check the server's health (grpc.health.v1)\n"
         "  jobs list [--state S]... [--program NAME] [--page-size N] [--page-token T]\n"
         "  jobs get JOB_ID                  show one job\n"
         "  jobs cancel JOB_ID               cancel a queued or running job\n"
         "\n"
         "environment: ELEXIRION_ADDR (default 127.0.0.1:50051), ELEXIRION_TOKEN\n";
}

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
    if (i + 1 >= args.size()) return absl::InvalidArgumentError(flag + ": missing value");
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
        return absl::InvalidArgumentError("--timeout: must be a duration like 30s");
      }
    } else if (arg == "--json") {
      inv.json = true;
    } else if (arg.rfind("--", 0) == 0 && inv.words.empty()) {
      return absl::InvalidArgumentError(arg + ": unknown flag");
    } else {
      inv.words.assign(args.begin() + static_cast<long>(i), args.end());
      break;
    }
  }
  return inv;
}

int Run(const Invocation& inv, std::ostream& out, std::ostream& err) {
  if (inv.words.empty() || inv.words[0] == "help" || inv.words[0] == "--help") {
    (inv.words.empty() ? err : out) << Usage();
    return inv.words.empty() ? 2 : 0;
  }
  const Handler* handler = nullptr;
  size_t consumed = 0;
  if (inv.words.size() >= 2) {
    auto it = Commands().find(inv.words[0] + " " + inv.words[1]);
    if (it != Commands().end()) {
      handler = &it->second;
      consumed = 2;
    }
  }
  if (handler == nullptr) {
    auto it = Commands().find(inv.words[0]);
    if (it != Commands().end()) {
      handler = &it->second;
      consumed = 1;
    }
  }
  if (handler == nullptr) {
    err << "elexirion: unknown command \"" << absl::StrJoin(inv.words, " ") << "\"\n\n"
        << Usage();
    return 2;
  }
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
  CommandArgs args(Args(inv.words.begin() + static_cast<long>(consumed), inv.words.end()));
  absl::Status s = (*handler)(context, args);
  if (!s.ok()) {
    err << "elexirion: " << absl::StatusCodeToString(s.code()) << ": " << s.message() << "\n";
    return s.code() == absl::StatusCode::kInvalidArgument && s.message().find("--") == 0 ? 2
                                                                                         : 1;
  }
  return 0;
}

}  // namespace elexirion::cli
