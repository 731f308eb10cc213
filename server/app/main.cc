// elexirion-server: parses configuration, starts the server and stops it gracefully on
// SIGTERM/SIGINT (exit 0). Bad configuration or a port in use exits 2 / 1 with the reason.
// With --check-store it only opens the configured store (never creating or migrating it),
// runs its integrity check and exits 0 (passed) or 1 (the problems found, or why the store
// cannot be checked).
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "curl/curl.h"
#include "server/app/server.h"
#include "server/learning/policy.h"
#include "server/store/store.h"
#include "server/app/signal_waiter.h"
#include "server/common/logging.h"
#include "server/config/server_config.h"

int main(int argc, char** argv) {
  using namespace elexirion;
  app::BlockTerminationSignals();
  curl_global_init(CURL_GLOBAL_DEFAULT);
  // Debian's Abseil is built with lock-order (deadlock) detection on, which records every
  // mutex acquisition in a global graph: measurable on hot paths such as the progress
  // fan-out. The tests keep it on (they run the server inside their own binaries).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  config::ConfigSources sources;
  bool check_store = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::printf(
          "usage: elexirion-server [--config FILE] [--KEY=VALUE ...] [--check-store]\n\n"
          "  --check-store  check the configured store's integrity (SQLite's page check and\n"
          "                 the store's own bookkeeping) and exit 0 when it passes, 1 if not\n\n%s",
          config::ConfigHelp().c_str());
      return 0;
    }
    if (std::strcmp(argv[i], "--version") == 0) {
      std::printf("elexirion-server %s\n", app::kVersion);
      return 0;
    }
    if (std::strcmp(argv[i], "--check-store") == 0) {
      check_store = true;
      continue;
    }
    sources.args.emplace_back(argv[i]);
  }

  auto config = config::LoadServerConfig(sources);
  if (!config.ok()) {
    logging::Error("invalid configuration", {{"error", std::string(config.status().message())}});
    std::fprintf(stderr, "elexirion-server: invalid configuration: %s\n",
                 std::string(config.status().message()).c_str());
    return 2;
  }
  // The learning section is parsed by its own module; a mistake there is a config error too.
  if (auto learning = learning::ParseLearningConfig(config->learning); !learning.ok()) {
    std::fprintf(stderr, "elexirion-server: invalid configuration: %s\n",
                 std::string(learning.status().message()).c_str());
    return 2;
  }
  if (check_store) {
    auto store = app::OpenStore(config->store, /*existing_only=*/true);
    absl::Status checked = store.ok() ? (*store)->IntegrityCheck() : store.status();
    if (!checked.ok()) {
      std::fprintf(stderr, "elexirion-server: store check failed: %s\n",
                   std::string(checked.message()).c_str());
      return 1;
    }
    std::printf("elexirion-server: store check passed (%s)\n", config->store.driver.c_str());
    return 0;
  }
  logging::Level level = logging::Level::kInfo;
  logging::ParseLevel(config->log.level, &level);
  logging::SetMinLevel(level);
  logging::Info("effective configuration", config::EffectiveConfigForLog(*config));

  app::Server::Options options;
  options.config = *std::move(config);
  auto server = app::Server::Create(std::move(options));
  if (!server.ok()) {
    logging::Error("start-up failed", {{"error", std::string(server.status().message())}});
    return 1;
  }
  absl::Status started = (*server)->Start();
  if (!started.ok()) {
    logging::Error("start-up failed", {{"error", std::string(started.message())}});
    return 1;
  }
  int sig = app::WaitForTerminationSignal();
  logging::Info("signal received", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  (*server)->Shutdown();
  curl_global_cleanup();
  return 0;
}
