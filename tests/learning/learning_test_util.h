// Shared setup of the learning tests: a real SQLite store in a temp dir, on a fake clock, and
// small writers for executions, examples and programs.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/common/clock.h"
#include "server/learning/policy.h"
#include "server/store/sqlite_store.h"

namespace elexirion::learning::testing {

inline std::unique_ptr<store::SqliteStore> OpenStore(const std::string& path, Clock* clock) {
  store::SqliteStore::Options options;
  options.path = path;
  options.clock = clock;
  auto store = store::SqliteStore::Create(options);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? std::move(*store) : nullptr;
}

// `successes` successful and `failures` failed executions of `pipeline` at `time`.
inline void AddExecutions(store::Store& store, const std::string& pipeline, int successes,
                          int failures, absl::Time time) {
  static int next = 0;
  std::vector<store::ExecutionRecordRow> rows;
  for (int i = 0; i < successes + failures; ++i) {
    store::ExecutionRecordRow row;
    row.record_id = absl::StrCat("r", next++);
    row.pipeline_name = pipeline;
    row.success = i < successes;
    row.duration_seconds = 1;
    row.quality_score = row.success ? 9 : 2;
    row.input_json = "{}";
    row.output_json = "{}";
    row.metadata_json = "{}";
    row.time = time;
    rows.push_back(row);
  }
  auto result = store.InsertExecutions(rows);
  ASSERT_TRUE(result.ok()) << result.status();
  for (const auto& r : *result) ASSERT_TRUE(r.status.ok()) << r.status;
}

// Adds `n` distinct examples to `dataset` (created when missing), stamped by the store clock.
inline void AddExamples(store::Store& store, const std::string& dataset, int n) {
  static int next = 0;
  if (!store.GetDataset(dataset).ok()) {
    store::DatasetRecord record;
    record.name = dataset;
    record.pipeline_name = dataset;
    ASSERT_TRUE(store.CreateDataset(record).ok());
  }
  std::vector<store::ExampleRecord> examples;
  for (int i = 0; i < n; ++i) {
    store::ExampleRecord example;
    const int id = next++;
    example.input_json = absl::StrCat("{\"q\":\"", id, "\"}");
    example.expected_output_json = "{\"a\":\"x\"}";
    example.metadata_json = "{}";
    example.content_hash = absl::StrCat("hash-", id);
    examples.push_back(example);
  }
  auto added = store.AddExamples(dataset, examples);
  ASSERT_TRUE(added.ok()) << added.status();
}

// A program version optimizing `pipeline`, created at the store clock's now (its last
// optimization time).
inline void AddProgram(store::Store& store, const std::string& pipeline) {
  store::ProgramRecord program;
  program.name = pipeline;
  program.pipeline_name = pipeline;
  program.optimizer = "bootstrap_few_shot";
  program.dspy_json = "{}";
  program.optimized_yaml = "workflow: {}";
  program.scores_json = "{}";
  auto created = store.CreateProgramVersion(program);
  ASSERT_TRUE(created.ok()) << created.status();
}

// A policy for `pipeline` with the defaults of a configured pipeline and a metric.
inline PipelinePolicy TestPolicy(const std::string& pipeline) {
  LearningConfig config;
  PipelinePolicy policy = config.PolicyFor(pipeline);
  policy.daily.enabled = true;
  policy.weekly.enabled = true;
  v1::MetricSpec metric;
  metric.mutable_exact_match()->set_field("answer");
  policy.metric = metric;
  return policy;
}

}  // namespace elexirion::learning::testing
