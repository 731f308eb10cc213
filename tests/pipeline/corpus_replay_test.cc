// Replays the committed libFuzzer corpus (fuzz/corpus/pipeline_loader) with the normal
// compiler: every input must go through the same checks as the fuzzer without crashing.
#include <filesystem>
#include <string>
#include <vector>

#include "fuzz/pipeline_loader_check.h"
#include "gtest/gtest.h"
#include "tests/pipeline/test_util.h"

namespace elexirion::pipeline {
namespace {

TEST(CorpusReplayTest, EveryCorpusInputPassesTheLoaderChecks) {
  const std::filesystem::path dir =
      std::filesystem::path(testing::SourceDir()) / "fuzz/corpus/pipeline_loader";
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 20u);
  size_t loaded = 0;
  for (const auto& file : files) {
    SCOPED_TRACE(file.filename().string());
    const std::string data = testing::ReadFile(file.string());
    fuzzing::CheckPipelineLoader(data);  // aborts on a broken invariant
    if (LoadPipeline(data).ok()) ++loaded;
  }
  // The real-shaped workflows among the seeds load.
  EXPECT_GE(loaded, 8u);
}

}  // namespace
}  // namespace elexirion::pipeline
