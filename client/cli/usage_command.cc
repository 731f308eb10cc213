#include "client/cli/usage_command.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "server/common/status_macros.h"

namespace elexirion::cli {
namespace {

constexpr char kUsage[] = "usage: elexirion usage PIPELINE [--window 24h]";

// Abseil durations ("24h", "90m", "1h30m") plus whole days ("7d"), the unit windows are
// usually thought in.
absl::StatusOr<absl::Duration> ParseWindow(const std::string& text) {
  absl::Duration window;
  int64_t days = 0;
  if (absl::EndsWith(text, "d") && absl::SimpleAtoi(text.substr(0, text.size() - 1), &days)) {
    window = absl::Hours(24 * days);
  } else if (!absl::ParseDuration(text, &window)) {
    return UsageError(
        absl::StrCat("--window: expected a duration like 24h, 90m or 7d, got \"", text, "\""));
  }
  if (window <= absl::ZeroDuration()) return UsageError("--window: must be positive");
  return window;
}

std::string FormatTimestamp(const google::protobuf::Timestamp& ts) {
  if (ts.seconds() == 0 && ts.nanos() == 0) return "never";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S %Z", absl::FromUnixSeconds(ts.seconds()),
                          absl::LocalTimeZone());
}

}  // namespace

absl::Status UsageStatsCommand(Context& c, const CommandArgs& args) {
  RETURN_IF_ERROR(args.Check({"window"}));
  if (args.positional().size() != 1) return UsageError(kUsage);
  v1::GetUsageStatsRequest request;
  request.set_pipeline_name(args.positional()[0]);
  absl::Duration window = absl::Hours(24);
  if (const std::string text = args.Get("window"); !text.empty()) {
    ASSIGN_OR_RETURN(window, ParseWindow(text));
  }
  request.mutable_window()->set_seconds(absl::ToInt64Seconds(window));
  grpc::ClientContext context;
  c.client.Prepare(&context);
  v1::UsageStats stats;
  RETURN_IF_ERROR(
      client::FromGrpcStatus(c.client.telemetry().GetUsageStats(&context, request, &stats)));
  if (c.inv.json) {
    c.out << ToJson(stats);
    return absl::OkStatus();
  }
  // Rates over no executions are meaningless, not zero.
  const bool any = stats.executions() > 0;
  auto seconds = [](double s) { return absl::StrFormat("%.3fs", s); };
  c.out << "pipeline:           " << stats.pipeline_name() << "\n"
        << "window:             " << absl::FormatDuration(window) << "\n"
        << "executions:         " << stats.executions() << "\n"
        << "success rate:       "
        << (any ? absl::StrFormat("%.1f%%", 100 * stats.success_rate()) : "-") << "\n"
        << "mean quality:       "
        << (any ? absl::StrFormat("%.2f / 10", stats.mean_quality()) : "-") << "\n"
        << "latency p50/p95/p99: "
        << (any ? absl::StrCat(seconds(stats.latency_p50_seconds()), " / ",
                               seconds(stats.latency_p95_seconds()), " / ",
                               seconds(stats.latency_p99_seconds()))
                : "-")
        << "\n"
        << "new examples since last optimization: " << stats.new_examples_since_optimization()
        << "\n"
        << "last optimization:  " << FormatTimestamp(stats.last_optimization_time()) << "\n";
  return absl::OkStatus();
}

}  // namespace elexirion::cli
