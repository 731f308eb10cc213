#include "tests/testutil/postgres_server.h"

#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "server/common/ids.h"

namespace elexirion::testutil {
namespace {

namespace fs = std::filesystem;

bool IsExecutable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

// `pg_config --bindir`, else the newest /usr/lib/postgresql/<version>/bin.
std::string FindBinDir() {
  if (FILE* p = ::popen("pg_config --bindir 2>/dev/null", "r")) {
    std::array<char, 512> buf{};
    std::string out;
    while (std::fgets(buf.data(), buf.size(), p) != nullptr) out += buf.data();
    ::pclose(p);
    std::string dir(absl::StripAsciiWhitespace(out));
    if (!dir.empty() && IsExecutable(dir + "/initdb") && IsExecutable(dir + "/postgres")) {
      return dir;
    }
  }
  std::vector<std::string> candidates;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    std::string bin = entry.path().string() + "/bin";
    if (IsExecutable(bin + "/initdb") && IsExecutable(bin + "/postgres")) {
      candidates.push_back(bin);
    }
  }
  if (candidates.empty()) return "";
  // Numeric versions: "15" > "9.6" needs a numeric compare.
  std::sort(candidates.begin(), candidates.end(), [](const std::string& a, const std::string& b) {
    return std::atof(fs::path(a).parent_path().filename().c_str()) <
           std::atof(fs::path(b).parent_path().filename().c_str());
  });
  return candidates.back();
}

// A loopback port that is free right now (the kernel's pick for port 0).
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  int port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

std::string Tail(const std::string& text, size_t max_chars) {
  return text.size() <= max_chars ? text : text.substr(text.size() - max_chars);
}

// Forks and execs `argv` as (uid, gid) when they are >= 0, in `cwd`, with stdout and stderr
// appended to `log`. With `die_with_parent` the child gets SIGINT (PostgreSQL's fast
// shutdown) when the calling thread dies. Returns the child's pid or -1.
pid_t Spawn(const std::vector<std::string>& argv, int uid, int gid, const std::string& cwd,
            const std::string& log, bool die_with_parent) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  // Child: only async-signal-safe calls until exec.
  ::setpgid(0, 0);  // our own process group: a ^C at the terminal goes to the test only
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd >= 0) {
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
  }
  int null_fd = ::open("/dev/null", O_RDONLY);
  if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
  if (gid >= 0 && (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0)) ::_exit(126);
  if (uid >= 0 && ::setuid(uid) != 0) ::_exit(126);
  // After setuid: a credential change clears the parent-death signal.
  if (die_with_parent) {
    ::prctl(PR_SET_PDEATHSIG, SIGINT);
    if (::getppid() != parent) ::_exit(125);
  }
  if (::chdir(cwd.c_str()) != 0) ::_exit(126);
  ::execv(args[0], args.data());
  ::_exit(127);
}

// Waits up to `timeout` for `pid` to exit. Returns its wait status, or -1 on timeout.
int WaitFor(pid_t pid, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0) return 0;  // not our child any more (already reaped)
    if (absl::Now() >= deadline) return -1;
    absl::SleepFor(absl::Milliseconds(10));
  }
}

bool ValidDatabaseName(const std::string& name) {
  if (name.empty() || name.size() > 60) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresServer>> PostgresServer::Start(Options options) {
  std::unique_ptr<PostgresServer> server(new PostgresServer());
  server->options_ = options;
  absl::Status init = server->Init();
  if (!init.ok()) return init;
  // A fixed port is used as is; a picked one may be taken by someone else before postgres
  // binds it, so pick again a few times.
  absl::Status launched;
  for (int attempt = 0; attempt < 5; ++attempt) {
    server->port_ = options.port != 0 ? options.port : FreePort();
    launched = server->Launch();
    if (launched.ok() || options.port != 0) break;
  }
  if (!launched.ok()) return launched;
  return server;
}

absl::Status PostgresServer::Init() {
  bindir_ = FindBinDir();
  if (bindir_.empty()) {
    return absl::FailedPreconditionError(
        "PostgreSQL server binaries not found (pg_config --bindir, /usr/lib/postgresql/*/bin): "
        "install the Debian package postgresql (scripts/install-deps.sh)");
  }
  const char* tmp = std::getenv("TMPDIR");
  dir_ = absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/elx-pg-", ::getpid(), "-",
                      RandomHexId(8));
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot create ", dir_, ": ", ec.message()));
  ::chmod(dir_.c_str(), 0700);
  if (::geteuid() == 0) {
    // PostgreSQL refuses to run as root.
    const passwd* pw = ::getpwnam("nobody");
    if (pw == nullptr) return absl::FailedPreconditionError("running as root without user nobody");
    run_uid_ = static_cast<int>(pw->pw_uid);
    run_gid_ = static_cast<int>(pw->pw_gid);
    if (::chown(dir_.c_str(), run_uid_, run_gid_) != 0) {
      return absl::UnavailableError(absl::StrCat("cannot chown ", dir_, " to nobody"));
    }
  }
  const std::string log = dir_ + "/initdb.log";
  pid_t pid = Spawn({bindir_ + "/initdb", "-D", dir_ + "/data", "-U", "postgres", "--auth=trust",
                     "-E", "UTF8", "--no-locale", "--no-sync"},
                    run_uid_, run_gid_, dir_, log, /*die_with_parent=*/false);
  if (pid < 0) return absl::UnavailableError("fork failed");
  int status = WaitFor(pid, absl::Minutes(2));
  if (status < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    if (status < 0) ::kill(pid, SIGKILL), WaitFor(pid, absl::Seconds(5));
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    return absl::UnavailableError(
        absl::StrCat("initdb failed in ", dir_, ": ", Tail(text.str(), 2000)));
  }
  return absl::OkStatus();
}

absl::Status PostgresServer::Launch() {
  const std::string fsync = options_.fsync ? "on" : "off";
  std::vector<std::string> argv = {bindir_ + "/postgres",
                                   "-D",
                                   dir_ + "/data",
                                   "-p",
                                   std::to_string(port_),
                                   "-k",
                                   dir_,
                                   "-c",
                                   "listen_addresses=127.0.0.1",
                                   "-c",
                                   "fsync=" + fsync,
                                   "-c",
                                   "full_page_writes=" + fsync,
                                   "-c",
                                   absl::StrCat("max_connections=", options_.max_connections),
                                   "-c",
                                   "shared_buffers=64MB",
                                   "-c",
                                   "log_min_messages=warning",
                                   "-c",
                                   "log_min_error_statement=panic"};
  const size_t log_offset = Log().size();
  pid_t pid = Spawn(argv, run_uid_, run_gid_, dir_, dir_ + "/postgres.log",
                    /*die_with_parent=*/true);
  if (pid < 0) return absl::UnavailableError("fork failed");
  pid_ = pid;
  const std::string ping_dsn = absl::StrCat(Dsn("postgres"), " connect_timeout=2");
  const absl::Time deadline = absl::Now() + options_.start_timeout;
  while (true) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      pid_ = -1;
      return absl::UnavailableError(absl::StrCat("postgres exited at start on port ", port_, ": ",
                                                 Tail(Log().substr(log_offset), 2000)));
    }
    if (PQping(ping_dsn.c_str()) == PQPING_OK) return absl::OkStatus();
    if (absl::Now() >= deadline) {
      (void)Stop();
      return absl::UnavailableError(absl::StrCat("postgres did not accept connections on port ",
                                                 port_, ": ",
                                                 Tail(Log().substr(log_offset), 2000)));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

PostgresServer::~PostgresServer() {
  (void)Stop();
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

absl::Status PostgresServer::Stop() {
  if (pid_ <= 0) return absl::OkStatus();
  const pid_t pid = pid_;
  pid_ = -1;
  ::kill(pid, SIGINT);  // fast shutdown: roll back open transactions, disconnect clients
  if (WaitFor(pid, absl::Seconds(30)) >= 0) return absl::OkStatus();
  ::kill(pid, SIGQUIT);  // immediate shutdown
  if (WaitFor(pid, absl::Seconds(10)) >= 0) return absl::OkStatus();
  ::kill(pid, SIGKILL);
  WaitFor(pid, absl::Seconds(10));
  return absl::DeadlineExceededError("postgres did not shut down; killed");
}

absl::Status PostgresServer::Restart() {
  if (running()) return absl::FailedPreconditionError("postgres is running");
  return Launch();
}

std::string PostgresServer::Dsn(const std::string& dbname) const {
  return absl::StrCat("host=127.0.0.1 port=", port_, " user=postgres dbname=", dbname);
}

absl::Status PostgresServer::Exec(const std::string& dbname, const std::string& sql) {
  PGconn* conn = PQconnectdb(absl::StrCat(Dsn(dbname), " connect_timeout=10").c_str());
  absl::Status status;
  if (PQstatus(conn) != CONNECTION_OK) {
    status = absl::UnavailableError(absl::StrCat("connect: ", PQerrorMessage(conn)));
  } else {
    PGresult* res = PQexec(conn, sql.c_str());
    const ExecStatusType rs = PQresultStatus(res);
    if (rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK) {
      const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
      const std::string message = absl::StrCat(sql, ": ", PQerrorMessage(conn));
      status = state != nullptr && std::string(state) == "42P04" ? absl::AlreadyExistsError(message)
                                                                 : absl::InternalError(message);
    }
    PQclear(res);
  }
  PQfinish(conn);
  return status;
}

absl::StatusOr<std::string> PostgresServer::CreateDatabase(const std::string& name) {
  if (!ValidDatabaseName(name)) {
    return absl::InvalidArgumentError(absl::StrCat("database name '", name, "'"));
  }
  // file_copy of the tiny template is much faster than PostgreSQL 15's WAL-logged default.
  absl::Status created =
      Exec("postgres", absl::StrCat("CREATE DATABASE \"", name, "\" STRATEGY = FILE_COPY"));
  if (!created.ok()) return created;
  return Dsn(name);
}

absl::StatusOr<std::string> PostgresServer::CreateDatabase() {
  return CreateDatabase(absl::StrCat("t", next_db_++, "_", RandomHexId(6)));
}

std::string PostgresServer::Log() const {
  std::ifstream in(dir_ + "/postgres.log");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace elexirion::testutil
