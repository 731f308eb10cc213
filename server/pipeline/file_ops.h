// file_ops steps (lib/pipeline/step/file_ops.ex), confined to the server's pipeline.output_dir:
// copy / move {source, destination}, delete {path}, list {path, pattern?: regex},
// validate {files: [{path, must_exist (true), must_be_file, must_be_dir, min_size,
// max_size}]} (any invalid file fails the step), convert {source, destination, format:
// csv_to_json | json_to_csv | yaml_to_json}. Paths are relative to the directory ("./" is
// dropped); absolute paths, ".." and symlinks out of it are refused with INVALID_ARGUMENT.
// Results have pipeline_ex's shapes ({"operation", "source", "destination", "status":
// "completed"}, {"operation": "list", "path", "pattern", "files", "count"}, ...).
//
// Thread safety: reentrant (the directory is thread safe).
#pragma once

#include <cstddef>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "server/pipeline/confined_dir.h"

namespace elexirion::pipeline {

// `config`: the step map, templates already interpolated. `dir` nullptr: FAILED_PRECONDITION
// (the server has no output directory).
absl::StatusOr<nlohmann::json> RunFileOps(const nlohmann::json& config,
                                          const ConfinedDirectory* dir, size_t max_file_bytes);

}  // namespace elexirion::pipeline
