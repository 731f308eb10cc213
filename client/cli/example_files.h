// Training examples on disk, in the two formats `elexirion datasets import/export` speak:
// JSON Lines (one Example per line) and the design document's TrainingDataManager layout, a
// directory of `{id}.json` files each holding
// {"id", "input", "expected_output", "metadata", "created_at"} with indent 2.
// Pure file I/O and conversion; no gRPC. Thread compatible.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "elexirion/v1/common.pb.h"

namespace elexirion::cli {

// One example read from disk and where it came from ("dir/ab12cd34.json", "data.jsonl:7"),
// so that every error can name the file.
struct SourcedExample {
  std::string source;
  v1::Example example;
};

// Every *.json file of `dir` (sorted by name) as one example. Usage error naming `flag` and
// the file for an unreadable or malformed one, and when there is no file at all.
absl::StatusOr<std::vector<SourcedExample>> ReadExampleDir(const std::string& flag,
                                                           const std::string& dir);

// Every non-blank line of a JSON Lines file as one example; usage error naming file:line.
absl::StatusOr<std::vector<SourcedExample>> ReadExampleJsonl(const std::string& flag,
                                                             const std::string& path);

// One ImportExamples call's worth: JSON Lines and, per line, the example's source.
struct ImportChunk {
  std::string jsonl;
  std::vector<std::string> sources;
};

// Splits examples into chunks of at most `max_examples` lines and `max_bytes` of JSONL.
// Usage error naming the source of an example larger than `max_bytes` on its own.
absl::StatusOr<std::vector<ImportChunk>> ChunkForImport(const std::vector<SourcedExample>& examples,
                                                        size_t max_bytes, size_t max_examples);

// Replaces a leading "line N" of a server error about `chunk` with the example's source.
std::string NameSourceInError(const ImportChunk& chunk, const std::string& error);

// The design layout text of one example (indent 2, fields in the design's order).
std::string DesignLayoutJson(const v1::Example& example);

enum class WriteOutcome { kWritten, kUnchanged };

// Writes `dir`/{id}.json in the design layout. An existing file with the same example (as
// JSON, formatting aside) is left alone; a different one is refused unless `force`.
absl::StatusOr<WriteOutcome> WriteExampleFile(const std::string& dir, const v1::Example& example,
                                              bool force);

// Writes `content` to `path` through a temporary file and a rename, so that a failed export
// never leaves a half-written file behind.
absl::Status WriteFileAtomically(const std::string& path, const std::string& content);

}  // namespace elexirion::cli
