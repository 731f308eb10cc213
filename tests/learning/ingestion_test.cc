// Quality scoring, training-data harvest and the durable group commit of the
// ExecutionIngestor, against a real SQLite file.
#include <atomic>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "server/learning/execution_ingestor.h"
#include "server/learning/quality.h"
#include "server/learning/training_data.h"
#include "server/store/sqlite_store.h"
#include "tests/testutil/forwarding_store.h"
#include "tests/testutil/temp_dir.h"

namespace elexirion::learning {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

v1::MetricSpec Metric(const std::string& json_text) {
  v1::MetricSpec spec;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json_text, &spec).ok()) << json_text;
  return spec;
}

TEST(HeuristicQualityTest, FollowsTheDesignDocument) {
  EXPECT_EQ(HeuristicQuality(true, json{{"findings", {"a"}}}), 8.5);
  EXPECT_EQ(HeuristicQuality(true, json{{"findings", "text finding"}}), 8.5);
  EXPECT_EQ(HeuristicQuality(true, json::parse(R"({"step": {"findings": {"k": 1}}})")), 8.5);
  EXPECT_EQ(HeuristicQuality(true, json{{"findings", json::array()}}), 7.0);
  EXPECT_EQ(HeuristicQuality(true, json::parse(R"({"findings": ""})")), 7.0);
  EXPECT_EQ(HeuristicQuality(true, json::object()), 7.0);
  EXPECT_EQ(HeuristicQuality(true, json("just text")), 7.0);
  EXPECT_EQ(HeuristicQuality(true, json{{"status", "partial"}, {"findings", {"a"}}}), 5.0);
  EXPECT_EQ(HeuristicQuality(false, json{{"status", "partial"}}), 5.0);
  EXPECT_EQ(HeuristicQuality(false, json{{"findings", {"a"}}}), 2.0);
  EXPECT_EQ(HeuristicQuality(false, json()), 2.0);
}

TEST(QualityScorerTest, ConfiguredMetricScoresAgainstMetadataExpectedOutput) {
  auto scorer = QualityScorer::Create(Metric(R"({"exact_match": {"field": "severity"}})"));
  ASSERT_TRUE(scorer.ok()) << scorer.status();
  const json input = {{"code", "x"}};
  const json output = {{"severity", "High"}};
  EXPECT_EQ((*scorer)->Score(true, input, output, {{"expected_output", {{"severity", "high"}}}}),
            10.0);
  EXPECT_EQ((*scorer)->Score(true, input, output, {{"expected_output", {{"severity", "low"}}}}),
            0.0);
  // A failed execution keeps the heuristic's verdict.
  EXPECT_EQ((*scorer)->Score(false, input, output, json::object()), 2.0);
}

TEST(QualityScorerTest, RegexMetricNeedsNoExpectedOutput) {
  auto scorer = QualityScorer::Create(
      Metric(R"({"regex": {"field": "severity", "pattern": "^(low|medium|high|critical)$"}})"));
  ASSERT_TRUE(scorer.ok()) << scorer.status();
  EXPECT_EQ((*scorer)->Score(true, json::object(), {{"severity", "high"}}, json::object()), 10.0);
  EXPECT_EQ((*scorer)->Score(true, json::object(), {{"severity", "??"}}, json::object()), 0.0);
}

TEST(QualityScorerTest, RefusesMetricsThatCallAModel) {
  auto judge = QualityScorer::Create(Metric(R"({"llm_judge": {"rubric": "good?"}})"));
  ASSERT_FALSE(judge.ok());
  EXPECT_EQ(judge.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(judge.status().message(), HasSubstr("llm_judge is not allowed"));
  auto nested = QualityScorer::Create(Metric(
      R"({"composite": {"mode": "MODE_ALL", "parts": [{"exact_match": {"field": "a"}},
          {"llm_judge": {"rubric": "r"}}]}})"));
  EXPECT_FALSE(nested.ok());
}

TEST(TrainingDataTest, ContentHashIgnoresKeyOrderAndMetadata) {
  const json a = json::parse(R"({"x": 1, "y": [1, 2]})");
  const json b = json::parse(R"({"y": [1, 2], "x": 1})");
  EXPECT_EQ(ExampleContentHash(a, {{"o", 1}}), ExampleContentHash(b, {{"o", 1}}));
  EXPECT_NE(ExampleContentHash(a, {{"o", 1}}), ExampleContentHash(a, {{"o", 2}}));
  EXPECT_EQ(ExampleContentHash(a, {{"o", 1}}).size(), 64u);
  store::ExampleRecord e1 = HarvestedExample("d", a, {{"o", 1}}, HarvestSource{});
  HarvestSource other;
  other.quality_score = 9;
  other.execution_id = "different";
  store::ExampleRecord e2 = HarvestedExample("d", b, {{"o", 1}}, other);
  EXPECT_EQ(e1.content_hash, e2.content_hash);
  EXPECT_NE(e1.metadata_json, e2.metadata_json);
}

TEST(TrainingDataTest, HarvestRule) {
  EXPECT_TRUE(ShouldHarvest(true, 8.0, 8.0));
  EXPECT_FALSE(ShouldHarvest(true, 7.999, 8.0));
  EXPECT_FALSE(ShouldHarvest(false, 10, 8.0));
}

// A store whose InsertExecutions waits for the test's go-ahead, and counts commits.
class GatedStore : public testutil::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  absl::StatusOr<std::vector<store::ExecutionInsertResult>> InsertExecutions(
      const std::vector<store::ExecutionRecordRow>& rows) override {
    {
      absl::MutexLock lock(&mu_);
      ++commits_;
      rows_per_commit_.push_back(rows.size());
      mu_.Await(absl::Condition(&open_));
    }
    if (delay_ > absl::ZeroDuration()) absl::SleepFor(delay_);
    return inner_->InsertExecutions(rows);
  }
  void Open() {
    absl::MutexLock lock(&mu_);
    open_ = true;
  }
  void Close() {
    absl::MutexLock lock(&mu_);
    open_ = false;
  }
  int commits() {
    absl::MutexLock lock(&mu_);
    return commits_;
  }
  std::vector<size_t> rows_per_commit() {
    absl::MutexLock lock(&mu_);
    return rows_per_commit_;
  }
  // Waits (up to 10 s) until `n` commits have started.
  bool WaitForCommits(int n) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return commits_ >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), absl::Seconds(10));
  }
  absl::Duration delay_ = absl::ZeroDuration();

 private:
  absl::Mutex mu_;
  bool open_ ABSL_GUARDED_BY(mu_) = true;
  int commits_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<size_t> rows_per_commit_ ABSL_GUARDED_BY(mu_);
};

ExecutionInput Record(const std::string& pipeline, int n, bool good) {
  ExecutionInput r;
  r.pipeline_name = pipeline;
  r.record_id = "r-" + std::to_string(n);
  r.success = true;
  r.duration_seconds = 1;
  r.input_json = json{{"n", n}}.dump();
  r.output_json = (good ? json{{"findings", {"f"}}} : json{{"severity", "low"}}).dump();
  return r;
}

class IngestorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::SqliteStore::Options options;
    options.path = dir_.File("db.sqlite");
    auto sqlite = store::SqliteStore::Create(options);
    ASSERT_TRUE(sqlite.ok()) << sqlite.status();
    sqlite_ = std::move(*sqlite);
    gated_ = std::make_unique<GatedStore>(sqlite_.get());
  }

  std::unique_ptr<ExecutionIngestor> NewIngestor(ExecutionIngestor::Options options = {}) {
    options.store = gated_.get();
    auto ingestor = ExecutionIngestor::Create(std::move(options));
    EXPECT_TRUE(ingestor.ok()) << ingestor.status();
    return ingestor.ok() ? std::move(*ingestor) : nullptr;
  }

  // Ingests and waits for the acknowledgement.
  std::vector<IngestResult> IngestAndWait(ExecutionIngestor& ingestor,
                                          std::vector<ExecutionInput> records) {
    absl::Notification done;
    std::vector<IngestResult> out;
    absl::Status queued = ingestor.Ingest(std::move(records), [&](std::vector<IngestResult> r) {
      out = std::move(r);
      done.Notify();
    });
    EXPECT_TRUE(queued.ok()) << queued;
    if (queued.ok()) done.WaitForNotification();
    return out;
  }

  testutil::TempDir dir_;
  std::unique_ptr<store::SqliteStore> sqlite_;
  std::unique_ptr<GatedStore> gated_;
};

TEST_F(IngestorTest, AcknowledgesAfterTheCommitWithHarvestAndPipelineConfig) {
  ASSERT_TRUE(sqlite_
                  ->UpsertPipeline(
                      {"code_analysis", "name: code_analysis\nsteps: []\n", 0, store::kUnsetTime})
                  .ok());
  auto ingestor = NewIngestor();
  auto results = IngestAndWait(
      *ingestor, {Record("code_analysis", 1, true), Record("code_analysis", 2, false)});
  ASSERT_EQ(results.size(), 2u);
  EXPECT_TRUE(results[0].status.ok());
  EXPECT_EQ(results[0].quality_score, 8.5);
  EXPECT_TRUE(results[0].harvested);
  EXPECT_EQ(results[1].quality_score, 7.0);
  EXPECT_FALSE(results[1].harvested);
  auto page = sqlite_->ListExamples("code_analysis", 0, "");
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->examples.size(), 1u);
  const json metadata = json::parse(page->examples[0].metadata_json);
  EXPECT_EQ(metadata["source"], "successful_execution");
  EXPECT_EQ(metadata["execution_id"], results[0].id);
  EXPECT_EQ(metadata["pipeline_config"]["revision"], 1);
  EXPECT_THAT(metadata["pipeline_config"]["yaml"].get<std::string>(), HasSubstr("steps: []"));
}

TEST_F(IngestorTest, ConcurrentCallersShareCommits) {
  // Each commit takes 5 ms, so callers arriving meanwhile must be grouped into the next one.
  gated_->delay_ = absl::Milliseconds(5);
  auto ingestor = NewIngestor();
  constexpr int kThreads = 16;
  constexpr int kPerThread = 20;
  std::atomic<int> acknowledged{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto results = IngestAndWait(*ingestor, {Record("group", t * 1000 + i, false)});
        if (results.size() == 1 && results[0].status.ok()) ++acknowledged;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(acknowledged.load(), kThreads * kPerThread);
  EXPECT_LT(gated_->commits(), kThreads * kPerThread / 4) << "commits were not grouped";
  auto summary =
      sqlite_->SummarizeExecutions("group", absl::InfinitePast(), absl::InfiniteFuture());
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->executions, kThreads * kPerThread);
}

TEST_F(IngestorTest, FullQueueAnswersResourceExhaustedAndLosesNothingAccepted) {
  ExecutionIngestor::Options options;
  options.max_queued_rows = 10;
  auto ingestor = NewIngestor(options);
  gated_->Close();
  // The first submission is taken by the writer (blocked in the store); the queue then
  // fills to its cap.
  std::atomic<int> done{0};
  auto count = [&](std::vector<IngestResult> r) {
    for (const auto& x : r) done += x.status.ok() ? 1 : 0;
  };
  std::vector<ExecutionInput> first = {Record("bp", 0, false)};
  ASSERT_TRUE(ingestor->Ingest(first, count).ok());
  while (gated_->commits() == 0) absl::SleepFor(absl::Milliseconds(1));
  std::vector<ExecutionInput> ten;
  for (int i = 1; i <= 10; ++i) ten.push_back(Record("bp", i, false));
  ASSERT_TRUE(ingestor->Ingest(ten, count).ok());
  absl::Status full = ingestor->Ingest({Record("bp", 11, false)}, count);
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(full.message(), HasSubstr("retry later"));
  gated_->Open();
  ingestor->Stop();  // commits what was accepted
  EXPECT_EQ(done.load(), 11);
  auto summary = sqlite_->SummarizeExecutions("bp", absl::InfinitePast(), absl::InfiniteFuture());
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->executions, 11);
  EXPECT_EQ(ingestor->Ingest({Record("bp", 12, false)}, count).code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(IngestorTest, SecondWriterCommitsOnlyWhenEnoughRowsWait) {
  gated_->Close();
  ExecutionIngestor::Options options;
  options.writers = 2;
  options.parallel_commit_rows = 50;
  auto ingestor = NewIngestor(options);
  std::atomic<int> acknowledged{0};
  auto count = [&](std::vector<IngestResult> r) {
    for (const auto& x : r) acknowledged += x.status.ok() ? 1 : 0;
  };
  ASSERT_TRUE(ingestor->Ingest({Record("pw", 0, false)}, count).ok());
  ASSERT_TRUE(gated_->WaitForCommits(1));
  // A commit is in flight and few rows wait: the idle writer leaves them to grow one group.
  for (int i = 1; i <= 10; ++i) ASSERT_TRUE(ingestor->Ingest({Record("pw", i, false)}, count).ok());
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(gated_->commits(), 1) << "a second commit started for 10 waiting rows";
  // 50 rows wait: the second writer takes all of them while the first commit still runs.
  std::vector<ExecutionInput> forty;
  for (int i = 11; i <= 50; ++i) forty.push_back(Record("pw", i, false));
  ASSERT_TRUE(ingestor->Ingest(forty, count).ok());
  ASSERT_TRUE(gated_->WaitForCommits(2)) << "no second commit with 50 rows waiting";
  EXPECT_EQ(gated_->rows_per_commit(), (std::vector<size_t>{1, 50}));
  gated_->Open();
  ingestor->Stop();
  EXPECT_EQ(acknowledged.load(), 51);
  auto summary = sqlite_->SummarizeExecutions("pw", absl::InfinitePast(), absl::InfiniteFuture());
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->executions, 51);
}

TEST_F(IngestorTest, RefusesZeroWriters) {
  ExecutionIngestor::Options options;
  options.store = gated_.get();
  options.writers = 0;
  auto ingestor = ExecutionIngestor::Create(std::move(options));
  ASSERT_FALSE(ingestor.ok());
  EXPECT_EQ(ingestor.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ingestor.status().message(), HasSubstr("writers"));
}

TEST_F(IngestorTest, PolicyChoosesDatasetThresholdAndQualityMetric) {
  ExecutionIngestor::Options options;
  PipelinePolicy policy;
  policy.pipeline = "graded";
  policy.program = "graded";
  policy.dataset = "graded-gold";
  policy.harvest_threshold = 9.5;
  policy.quality_metric = Metric(R"({"regex": {"field": "answer", "pattern": "^42$"}})");
  options.config.pipelines["graded"] = policy;
  auto ingestor = NewIngestor(options);
  ExecutionInput right = Record("graded", 1, false);
  right.output_json = json{{"answer", "42"}}.dump();
  ExecutionInput wrong = Record("graded", 2, false);
  wrong.output_json = json{{"answer", "41"}}.dump();
  ExecutionInput rated = Record("graded", 3, false);
  rated.quality_score = 9.0;  // given by the runtime, below this pipeline's 9.5
  auto results = IngestAndWait(*ingestor, {right, wrong, rated});
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].quality_score, 10.0);
  EXPECT_TRUE(results[0].harvested);
  EXPECT_EQ(results[1].quality_score, 0.0);
  EXPECT_FALSE(results[1].harvested);
  EXPECT_EQ(results[2].quality_score, 9.0);
  EXPECT_FALSE(results[2].harvested);
  auto dataset = sqlite_->GetDataset("graded-gold");
  ASSERT_TRUE(dataset.ok());
  EXPECT_EQ(dataset->example_count, 1);
  EXPECT_EQ(dataset->pipeline_name, "graded");
}

// Another process took the id first (same millisecond and counter): the row gets a new id and
// its example the new execution_id.
class CollidingStore : public testutil::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  absl::StatusOr<std::vector<store::ExecutionInsertResult>> InsertExecutions(
      const std::vector<store::ExecutionRecordRow>& rows) override {
    if (!collided_ && !rows.empty()) {
      collided_ = true;
      store::ExecutionRecordRow other = rows[0];
      other.record_id = "someone-else";
      other.harvest.reset();
      taken_id_ = other.id;
      (void)inner_->InsertExecutions({other});
    }
    return inner_->InsertExecutions(rows);
  }
  bool collided_ = false;
  std::string taken_id_;
};

TEST_F(IngestorTest, IdCollisionWithAnotherWriterIsRetriedWithANewId) {
  CollidingStore colliding(sqlite_.get());
  ExecutionIngestor::Options options;
  options.store = &colliding;
  auto ingestor = ExecutionIngestor::Create(std::move(options));
  ASSERT_TRUE(ingestor.ok());
  auto results = IngestAndWait(**ingestor, {Record("collide", 1, true)});
  ASSERT_EQ(results.size(), 1u);
  ASSERT_TRUE(results[0].status.ok()) << results[0].status;
  EXPECT_TRUE(colliding.collided_);
  EXPECT_NE(results[0].id, colliding.taken_id_);
  EXPECT_TRUE(results[0].harvested);
  auto page = sqlite_->ListExamples("collide", 0, "");
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->examples.size(), 1u);
  EXPECT_EQ(json::parse(page->examples[0].metadata_json)["execution_id"], results[0].id);
}

TEST_F(IngestorTest, UnusableQualityMetricFailsCreation) {
  ExecutionIngestor::Options options;
  options.store = gated_.get();
  PipelinePolicy policy;
  policy.pipeline = "judge";
  policy.quality_metric = Metric(R"({"llm_judge": {"rubric": "r"}})");
  options.config.pipelines["judge"] = policy;
  auto ingestor = ExecutionIngestor::Create(std::move(options));
  ASSERT_FALSE(ingestor.ok());
  EXPECT_THAT(ingestor.status().message(),
              HasSubstr("learning.pipelines.judge.quality_metric: llm_judge"));
}

}  // namespace
}  // namespace elexirion::learning
