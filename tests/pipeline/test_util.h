// Helpers for the pipeline tests: test data paths and scratch directories.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace elexirion::pipeline::testing {

inline std::string SourceDir() {
  const char* dir = std::getenv("ELEXIRION_SOURCE_DIR");
  return dir != nullptr ? dir : ELEXIRION_TEST_SOURCE_DIR;
}

inline std::string TestData(const std::string& relative) {
  return SourceDir() + "/tests/pipeline/testdata/" + relative;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void WriteFile(const std::string& path, const std::string& content) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary);
  out << content;
}

// A fresh directory under TEST_TMPDIR or /tmp, removed at destruction.
class ScratchDir {
 public:
  ScratchDir() {
    const char* base = std::getenv("TEST_TMPDIR");
    std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/pipeline_test_XXXXXX";
    char* made = mkdtemp(pattern.data());
    if (made == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& relative) const { return path_ + "/" + relative; }

 private:
  std::string path_;
};

}  // namespace elexirion::pipeline::testing
