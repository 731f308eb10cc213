#include "tests/testutil/temp_dir.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "server/common/ids.h"

namespace elexirion::testutil {

TempDir::TempDir() {
  const char* tmp = std::getenv("TMPDIR");
  path_ = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/elx-test-", ::getpid(), "-",
                       RandomHexId(8));
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::Write(const std::string& name, const std::string& content) const {
  std::string path = File(name);
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

}  // namespace elexirion::testutil
