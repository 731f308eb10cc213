#include "tests/testutil/test_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/common/ids.h"

namespace elexirion::testutil {

config::ServerConfig TestConfig(const TempDir& dir) {
  config::ServerConfig config;
  config.grpc.listen = "127.0.0.1:0";
  config.http.listen = "127.0.0.1:0";
  config.store.sqlite_path = dir.File("elexirion.sqlite");
  config.shutdown.grace = absl::Seconds(2);
  config.grpc.enable_reflection = false;
  return config;
}

absl::StatusOr<std::unique_ptr<InProcessServer>> InProcessServer::Start(
    config::ServerConfig config) {
  app::Server::Options options;
  options.config = std::move(config);
  return Start(std::move(options));
}

absl::StatusOr<std::unique_ptr<InProcessServer>> InProcessServer::Start(
    app::Server::Options options) {
  auto result = std::unique_ptr<InProcessServer>(new InProcessServer());
  auto server = app::Server::Create(std::move(options));
  if (!server.ok()) return server.status();
  result->server_ = std::move(*server);
  absl::Status started = result->server_->Start();
  if (!started.ok()) return started;
  return result;
}

InProcessServer::~InProcessServer() {
  if (server_) server_->Shutdown();
}

std::string InProcessServer::address() const {
  return absl::StrCat("127.0.0.1:", server_->grpc_port());
}

std::unique_ptr<client::Client> InProcessServer::NewClient(const std::string& token) const {
  client::Client::Options options;
  options.address = address();
  options.token = token;
  options.deadline = absl::Seconds(20);
  return *client::Client::Create(options);
}

std::string BinaryPath(const std::string& relative) {
  const char* dir = std::getenv("ELEXIRION_BINARY_DIR");
  return absl::StrCat(dir != nullptr ? dir : ".", "/", relative);
}

std::string SourcePath(const std::string& relative) {
  const char* dir = std::getenv("ELEXIRION_SOURCE_DIR");
  return absl::StrCat(dir != nullptr ? dir : ".", "/", relative);
}

namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(
    const std::vector<std::string>& args, absl::Duration timeout) {
  auto process = std::unique_ptr<ServerProcess>(new ServerProcess());
  const char* tmp = std::getenv("TMPDIR");
  process->stderr_path_ =
      absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/elx-server-", RandomHexId(8), ".log");
  std::string binary = BinaryPath("server/app/elexirion-server");
  pid_t pid = ::fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    int fd = ::open(process->stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, STDERR_FILENO);
    ::dup2(fd, STDOUT_FILENO);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(binary.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  process->pid_ = pid;
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    int status;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      process->pid_ = -1;
      return absl::FailedPreconditionError(absl::StrCat(
          "server exited with status ", WEXITSTATUS(status), ": ", ReadAll(process->stderr_path_)));
    }
    std::istringstream lines(ReadAll(process->stderr_path_));
    for (std::string line; std::getline(lines, line);) {
      auto json = nlohmann::json::parse(line, nullptr, false);
      if (json.is_object() && json.value("msg", "") == "serving") {
        process->grpc_port_ = json.value("grpc_port", 0);
        process->http_port_ = json.value("http_port", 0);
        return process;
      }
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError("server did not start in time: " +
                                     ReadAll(process->stderr_path_));
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status;
    ::waitpid(pid_, &status, 0);
  }
  std::error_code ec;
  std::filesystem::remove(stderr_path_, ec);
}

int ServerProcess::Signal(int signal, absl::Duration timeout) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, signal);
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return status;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return -1;
}

std::string ServerProcess::Stderr() const { return ReadAll(stderr_path_); }

int RunCommand(const std::vector<std::string>& argv, std::string* output, absl::Duration timeout) {
  int pipefd[2];
  if (::pipe(pipefd) != 0) return -1;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipefd[0]);
    ::dup2(pipefd[1], STDOUT_FILENO);
    ::dup2(pipefd[1], STDERR_FILENO);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(pipefd[1]);
  ::fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
  const absl::Time deadline = absl::Now() + timeout;
  char buf[4096];
  int status = 0;
  bool exited = false;
  while (absl::Now() < deadline) {
    ssize_t n;
    while ((n = ::read(pipefd[0], buf, sizeof(buf))) > 0) output->append(buf, n);
    if (exited) break;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      continue;  // drain what is left
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  ::close(pipefd[0]);
  if (!exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

absl::StatusOr<std::pair<int, std::string>> HttpGet(int port, const std::string& path,
                                                    const std::string& method) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return absl::UnavailableError("connect failed");
  }
  std::string request = absl::StrCat(method, " ", path,
                                     " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                                     "Content-Length: 0\r\n\r\n");
  ::send(fd, request.data(), request.size(), 0);
  std::string response;
  char buf[8192];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) response.append(buf, n);
  ::close(fd);
  size_t sp = response.find(' ');
  size_t body = response.find("\r\n\r\n");
  int code = 0;
  if (sp == std::string::npos || body == std::string::npos ||
      !absl::SimpleAtoi(response.substr(sp + 1, 3), &code)) {
    return absl::InternalError("malformed HTTP response: " + response.substr(0, 200));
  }
  return std::make_pair(code, response.substr(body + 4));
}

v1::Job SubmitJob(const client::Client& client, const v1::OptimizeModuleRequest& request) {
  grpc::ClientContext context;
  client.Prepare(&context);
  v1::Job job;
  grpc::Status status = client.optimizer().OptimizeModule(&context, request, &job);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return job;
}

v1::Job GetJob(const client::Client& client, const std::string& id) {
  grpc::ClientContext context;
  client.Prepare(&context);
  v1::GetJobRequest request;
  request.set_id(id);
  v1::Job job;
  grpc::Status status = client.optimizer().GetJob(&context, request, &job);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return job;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string CodeAnalysisExample(const std::string& relative) {
  return SourcePath("examples/code_analysis/" + relative);
}

std::string FakeAnthropicProviders(const std::string& base_url, const std::string& key_file) {
  return absl::StrCat("providers:\n  anthropic:\n    kind: anthropic\n    base_url: ", base_url,
                      "\n    api_key_file: ", key_file, "\n    retry_base_delay: 10ms\n");
}

}  // namespace elexirion::testutil
