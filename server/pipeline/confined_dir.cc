#include "server/pipeline/confined_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/pipeline/strings.h"

namespace elexirion::pipeline {
namespace {

std::string Quote(absl::string_view path) {
  std::string out = "\"";
  for (char c : path.substr(0, 200)) {
    if (c == '\0') {
      out += "\\0";
    } else {
      out.push_back(c);
    }
  }
  if (path.size() > 200) out += "...";
  out += "\"";
  return out;
}

absl::Status PathError(absl::string_view path, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("path ", Quote(path), ": ", why));
}

absl::Status ErrnoError(absl::string_view path, int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(absl::StrCat("path ", Quote(path), ": no such file"));
    case EXDEV:
      return PathError(path, "resolves outside the prompts directory");
    case ELOOP:
      return PathError(path, "is or crosses a symlink that cannot be followed");
    case EACCES:
    case EPERM:
      return PathError(path, "permission denied");
    default:
      return PathError(path, strerror(err));
  }
}

int Openat2(int dirfd, const char* path, uint64_t flags, uint64_t mode) {
  struct open_how how = {};
  how.flags = flags;
  how.mode = mode;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(syscall(SYS_openat2, dirfd, path, &how, sizeof(how)));
}

}  // namespace

absl::Status ValidateRelativePath(std::string_view path_in) {
  const absl::string_view path = Sv(path_in);
  if (path.empty()) return PathError(path, "is empty");
  if (path.find('\0') != absl::string_view::npos) return PathError(path, "contains a NUL byte");
  if (path.size() > PATH_MAX) return PathError(path, "is too long");
  if (path.front() == '/') return PathError(path, "must be relative to the prompts directory");
  for (absl::string_view component : absl::StrSplit(path, '/')) {
    if (component == "..") return PathError(path, "must not contain \"..\"");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ConfinedDirectory>> ConfinedDirectory::Open(const std::string& dir) {
  if (dir.empty()) return absl::InvalidArgumentError("directory path is empty");
  const int fd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot open directory \"", dir, "\": ", strerror(errno)));
  }
  char real[PATH_MAX];
  std::string real_path = ::realpath(dir.c_str(), real) != nullptr ? real : dir;
  return std::unique_ptr<ConfinedDirectory>(new ConfinedDirectory(fd, dir, real_path));
}

ConfinedDirectory::~ConfinedDirectory() { ::close(fd_); }

absl::StatusOr<int> ConfinedDirectory::OpenBeneath(std::string_view relative_path_in, int flags,
                                                   int mode) const {
  const absl::string_view relative_path = Sv(relative_path_in);
  const std::string path(relative_path);
  int fd = Openat2(fd_, path.c_str(), static_cast<uint64_t>(flags), static_cast<uint64_t>(mode));
  if (fd >= 0) return fd;
  if (errno != ENOSYS) return ErrnoError(relative_path, errno);
  // No openat2: canonicalize and compare components (racy, but still confined at check time).
  const std::string full = absl::StrCat(real_path_, "/", path);
  char real[PATH_MAX];
  if (::realpath(full.c_str(), real) == nullptr) {
    if (errno == ENOENT && (flags & O_CREAT) != 0) {
      fd = ::openat(fd_, path.c_str(), flags | O_NOFOLLOW, mode);
      if (fd >= 0) return fd;
    }
    return ErrnoError(relative_path, errno);
  }
  const std::string resolved(real);
  if (resolved != real_path_ && resolved.rfind(real_path_ + "/", 0) != 0) {
    return ErrnoError(relative_path, EXDEV);
  }
  fd = ::open(resolved.c_str(), flags | O_NOFOLLOW, mode);
  if (fd < 0) return ErrnoError(relative_path, errno);
  return fd;
}

absl::StatusOr<std::string> ConfinedDirectory::Read(std::string_view relative_path_in,
                                                    size_t max_bytes) const {
  const absl::string_view relative_path = Sv(relative_path_in);
  if (absl::Status s = ValidateRelativePath(relative_path_in); !s.ok()) return s;
  auto fd_or = OpenBeneath(relative_path_in, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0);
  if (!fd_or.ok()) return fd_or.status();
  const int fd = *fd_or;
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return ErrnoError(relative_path, err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return PathError(relative_path, "is not a regular file");
  }
  if (static_cast<size_t>(st.st_size) > max_bytes) {
    ::close(fd);
    return PathError(relative_path,
                     absl::StrCat("is ", st.st_size, " bytes; the limit is ", max_bytes));
  }
  std::string content;
  content.resize(static_cast<size_t>(st.st_size) + 1);
  size_t total = 0;
  // Read at most cap + 1 bytes: a file that grows after fstat is still caught.
  while (total < max_bytes + 1) {
    if (total == content.size()) content.resize(std::min(content.size() * 2 + 64, max_bytes + 1));
    const ssize_t n = ::read(fd, content.data() + total, content.size() - total);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return ErrnoError(relative_path, err);
    }
    if (n == 0) break;
    total += static_cast<size_t>(n);
  }
  ::close(fd);
  if (total > max_bytes) {
    return PathError(relative_path,
                     absl::StrCat("is larger than the limit of ", max_bytes, " bytes"));
  }
  content.resize(total);
  return content;
}

absl::Status ConfinedDirectory::Write(std::string_view relative_path_in,
                                      std::string_view content) const {
  const absl::string_view relative_path = Sv(relative_path_in);
  if (absl::Status s = ValidateRelativePath(relative_path_in); !s.ok()) return s;
  std::vector<std::string> parts = absl::StrSplit(relative_path, '/', absl::SkipEmpty());
  if (parts.empty() || parts.back() == ".") return PathError(relative_path, "names no file");
  // Walk (and create) the parent directories without following any symlink.
  int dir = ::dup(fd_);
  if (dir < 0) return ErrnoError(relative_path, errno);
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    if (parts[i] == ".") continue;
    if (::mkdirat(dir, parts[i].c_str(), 0755) != 0 && errno != EEXIST) {
      const int err = errno;
      ::close(dir);
      return ErrnoError(relative_path, err);
    }
    const int next = ::openat(dir, parts[i].c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    const int err = errno;
    ::close(dir);
    if (next < 0) return ErrnoError(relative_path, err);
    dir = next;
  }
  const int fd = ::openat(dir, parts.back().c_str(),
                          O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0644);
  const int open_err = errno;
  ::close(dir);
  if (fd < 0) return ErrnoError(relative_path, open_err);
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return PathError(relative_path, "is not a regular file");
  }
  size_t written = 0;
  while (written < content.size()) {
    const ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return ErrnoError(relative_path, err);
    }
    written += static_cast<size_t>(n);
  }
  ::close(fd);
  return absl::OkStatus();
}

absl::Status ConfinedDirectory::Remove(std::string_view relative_path_in) const {
  const absl::string_view relative_path = Sv(relative_path_in);
  if (absl::Status s = ValidateRelativePath(relative_path_in); !s.ok()) return s;
  const size_t slash = relative_path.rfind('/');
  const std::string name(slash == absl::string_view::npos ? relative_path
                                                          : relative_path.substr(slash + 1));
  if (name.empty() || name == ".") return PathError(relative_path, "names no file");
  int dir = -1;
  if (slash == absl::string_view::npos) {
    dir = ::dup(fd_);
    if (dir < 0) return ErrnoError(relative_path, errno);
  } else {
    auto parent =
        OpenBeneath(StdSv(relative_path.substr(0, slash)), O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
    if (!parent.ok()) return parent.status();
    dir = *parent;
  }
  // unlinkat never follows the last component: a symlink is removed, not its target.
  int rc = ::unlinkat(dir, name.c_str(), 0);
  if (rc != 0 && errno == EISDIR) rc = ::unlinkat(dir, name.c_str(), AT_REMOVEDIR);
  const int err = errno;
  ::close(dir);
  if (rc != 0) return ErrnoError(relative_path, err);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ConfinedDirectory::List(
    std::string_view relative_path_in) const {
  const absl::string_view relative_path = Sv(relative_path_in);
  if (absl::Status s = ValidateRelativePath(relative_path_in); !s.ok()) return s;
  auto fd = OpenBeneath(relative_path_in, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (!fd.ok()) return fd.status();
  DIR* dir = ::fdopendir(*fd);
  if (dir == nullptr) {
    const int err = errno;
    ::close(*fd);
    return ErrnoError(relative_path, err);
  }
  std::vector<std::string> names;
  while (struct dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<ConfinedDirectory::Info> ConfinedDirectory::Stat(
    std::string_view relative_path_in) const {
  const absl::string_view relative_path = Sv(relative_path_in);
  if (absl::Status s = ValidateRelativePath(relative_path_in); !s.ok()) return s;
  auto fd = OpenBeneath(relative_path_in, O_PATH | O_CLOEXEC, 0);
  if (!fd.ok()) return fd.status();
  struct stat st;
  const int rc = ::fstat(*fd, &st);
  const int err = errno;
  ::close(*fd);
  if (rc != 0) return ErrnoError(relative_path, err);
  Info info;
  info.is_file = S_ISREG(st.st_mode);
  info.is_dir = S_ISDIR(st.st_mode);
  info.size = static_cast<uint64_t>(st.st_size);
  return info;
}

}  // namespace elexirion::pipeline
