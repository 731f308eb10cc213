// File access confined to one directory: prompt files (`{type: file, path}`) and step
// outputs (`output_to_file`). Reliability notes §4.2 (CWE-22):
//  - paths must be relative, non-empty, without "..", NUL or empty components;
//  - files are opened with openat2(dirfd, path, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), so
//    the kernel refuses absolute paths, ".." and symlinks that leave the directory (relative
//    symlinks that stay inside are fine; absolute symlinks never are). Without openat2 (ENOSYS) we
//    fall back to realpath() and a component-wise prefix check, accepting the TOCTOU window;
//  - opened non-blocking (a FIFO cannot hang us), then fstat: regular files only (no FIFO,
//    device, /dev/zero), size <= cap, and at most cap + 1 bytes are read.
// Every refusal is INVALID_ARGUMENT naming the path; NOT_FOUND when it does not exist.
//
// Thread safety: immutable after Open(); Read/Write may be called concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace elexirion::pipeline {

// Syntax-only check of a relative path (no filesystem access).
absl::Status ValidateRelativePath(std::string_view path);

class ConfinedDirectory {
 public:
  static absl::StatusOr<std::unique_ptr<ConfinedDirectory>> Open(const std::string& dir);
  ~ConfinedDirectory();
  ConfinedDirectory(const ConfinedDirectory&) = delete;
  ConfinedDirectory& operator=(const ConfinedDirectory&) = delete;

  // Reads a regular file of at most `max_bytes`.
  absl::StatusOr<std::string> Read(std::string_view relative_path, size_t max_bytes) const;
  // Creates missing parent directories (never following symlinks) and writes the file.
  absl::Status Write(std::string_view relative_path, std::string_view content) const;
  // Removes a file (or an empty directory); NOT_FOUND when missing.
  absl::Status Remove(std::string_view relative_path) const;
  // Entry names of a directory ("." is the directory itself), sorted.
  absl::StatusOr<std::vector<std::string>> List(std::string_view relative_path) const;
  struct Info {
    bool is_file = false;
    bool is_dir = false;
    uint64_t size = 0;
  };
  // NOT_FOUND when missing; symlinks are never followed out of the directory.
  absl::StatusOr<Info> Stat(std::string_view relative_path) const;

  const std::string& path() const { return path_; }

 private:
  ConfinedDirectory(int fd, std::string path, std::string real_path)
      : fd_(fd), path_(std::move(path)), real_path_(std::move(real_path)) {}
  // An fd for `relative_path` opened beneath the directory.
  absl::StatusOr<int> OpenBeneath(std::string_view relative_path, int flags, int mode) const;

  int fd_;
  std::string path_;
  std::string real_path_;
};

}  // namespace elexirion::pipeline
