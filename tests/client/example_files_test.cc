// The CLI's example file handling without a server: import chunking within the server's
// limits, server errors renamed to the file they concern, and the design layout on disk.
#include "client/cli/example_files.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/testutil/temp_dir.h"

namespace elexirion::cli {
namespace {

using ::testing::HasSubstr;
using testutil::TempDir;

SourcedExample Make(int n, size_t padding = 0) {
  SourcedExample e;
  e.source = absl::StrCat("dir/", n, ".json");
  std::string json =
      absl::StrCat(R"({"input": {"n": )", n, R"(, "pad": ")", std::string(padding, 'x'), R"("}})");
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &e.example).ok());
  return e;
}

TEST(ChunkForImportTest, KeepsEveryChunkWithinBothLimitsAndInOrder) {
  std::vector<SourcedExample> examples;
  for (int i = 0; i < 25; ++i) examples.push_back(Make(i, 100));
  auto by_count = ChunkForImport(examples, 1 << 20, 10);
  ASSERT_TRUE(by_count.ok()) << by_count.status();
  ASSERT_EQ(by_count->size(), 3u);
  EXPECT_EQ((*by_count)[2].sources.size(), 5u);
  EXPECT_EQ((*by_count)[1].sources.front(), "dir/10.json");

  auto by_bytes = ChunkForImport(examples, 1000, 1000);
  ASSERT_TRUE(by_bytes.ok()) << by_bytes.status();
  size_t total = 0;
  for (const auto& chunk : *by_bytes) {
    EXPECT_LE(chunk.jsonl.size(), 1000u);
    EXPECT_EQ(static_cast<size_t>(std::count(chunk.jsonl.begin(), chunk.jsonl.end(), '\n')),
              chunk.sources.size());
    total += chunk.sources.size();
  }
  EXPECT_EQ(total, 25u);
  EXPECT_GT(by_bytes->size(), 3u);

  auto too_big = ChunkForImport({Make(7, 2000)}, 1000, 1000);
  ASSERT_FALSE(too_big.ok());
  EXPECT_THAT(std::string(too_big.status().message()), HasSubstr("dir/7.json"));
}

TEST(NameSourceInErrorTest, ReplacesTheLineWithTheFile) {
  ImportChunk chunk;
  chunk.sources = {"a.json", "b.json"};
  EXPECT_EQ(NameSourceInError(chunk, "line 2.input: required (a JSON object)"),
            "b.json: input: required (a JSON object)");
  EXPECT_EQ(NameSourceInError(chunk, "line 1: Unexpected token"), "a.json: Unexpected token");
  // Anything else stays as the server said it.
  EXPECT_EQ(NameSourceInError(chunk, "line 3: out of range"), "line 3: out of range");
  EXPECT_EQ(NameSourceInError(chunk, "dataset gone"), "dataset gone");
}

TEST(ExampleDirTest, ReadsDesignFilesAndRefusesToOverwriteDifferentOnes) {
  TempDir dir;
  dir.Write("src/ab12cd34.json", R"({
  "id": "ab12cd34",
  "input": {"code": "x = 1"},
  "expected_output": {"severity": "low"},
  "metadata": null,
  "created_at": "2024-05-01T10:00:00.123456"
})");
  dir.Write("src/notes.txt", "ignored");
  auto read = ReadExampleDir("--dir", dir.File("src"));
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 1u);
  EXPECT_EQ((*read)[0].example.id(), "ab12cd34");
  EXPECT_THAT((*read)[0].source, HasSubstr("ab12cd34.json"));

  v1::Example example = (*read)[0].example;
  example.set_created_at("2026-01-01T00:00:00.000000Z");
  auto written = WriteExampleFile(dir.File("out"), example, false);
  // The directory is the caller's to create.
  ASSERT_FALSE(written.ok());
  std::filesystem::create_directories(dir.File("out"));
  written = WriteExampleFile(dir.File("out"), example, false);
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(*written, WriteOutcome::kWritten);
  // Only created_at differs: the same example, left alone.
  example.set_created_at("2027-01-01T00:00:00.000000Z");
  written = WriteExampleFile(dir.File("out"), example, false);
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(*written, WriteOutcome::kUnchanged);
  (*example.mutable_input()->mutable_fields())["code"].set_string_value("y = 2");
  written = WriteExampleFile(dir.File("out"), example, false);
  ASSERT_FALSE(written.ok());
  EXPECT_THAT(std::string(written.status().message()), HasSubstr("ab12cd34.json"));
  written = WriteExampleFile(dir.File("out"), example, true);
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(*written, WriteOutcome::kWritten);

  example.set_id("../escape");
  EXPECT_FALSE(WriteExampleFile(dir.File("out"), example, true).ok());
}

}  // namespace
}  // namespace elexirion::cli
