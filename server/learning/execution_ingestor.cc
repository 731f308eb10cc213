#include "server/learning/execution_ingestor.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/common/ids.h"
#include "server/common/logging.h"
#include "server/learning/telemetry_metrics.h"
#include "server/learning/training_data.h"

namespace elexirion::learning {
namespace {

// A registered pipeline's YAML goes into harvested examples up to this size; a larger one is
// referenced by name and revision only.
constexpr size_t kMaxEmbeddedYamlBytes = 64 << 10;
constexpr size_t kMaxCachedConfigs = 1000;

// A record's JSON text (written by the API from a Struct, so always an object).
nlohmann::json ParseObject(const std::string& text) {
  nlohmann::json parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  return parsed.is_object() ? parsed : nlohmann::json::object();
}

}  // namespace

absl::StatusOr<std::unique_ptr<ExecutionIngestor>> ExecutionIngestor::Create(Options options) {
  if (options.store == nullptr) return absl::InvalidArgumentError("store is required");
  if (options.writers < 1) return absl::InvalidArgumentError("writers must be >= 1");
  std::unique_ptr<ExecutionIngestor> ingestor(new ExecutionIngestor(std::move(options)));
  auto default_scorer = QualityScorer::Create(std::nullopt);
  if (!default_scorer.ok()) return default_scorer.status();
  ingestor->default_scorer_ = *std::move(default_scorer);
  for (const auto& [name, policy] : ingestor->options_.config.pipelines) {
    if (!policy.quality_metric.has_value()) continue;
    auto scorer = QualityScorer::Create(policy.quality_metric);
    if (!scorer.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("learning.pipelines.", name, ".", scorer.status().message()));
    }
    ingestor->scorers_[name] = *std::move(scorer);
  }
  absl::MutexLock lock(&ingestor->stop_mu_);
  for (int i = 0; i < ingestor->options_.writers; ++i) {
    ingestor->writers_.emplace_back([p = ingestor.get(), i] { p->WriterLoop(/*primary=*/i == 0); });
  }
  return ingestor;
}

ExecutionIngestor::ExecutionIngestor(Options options)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : Clock::Real()) {}

ExecutionIngestor::~ExecutionIngestor() { Stop(); }

void ExecutionIngestor::Stop() {
  absl::MutexLock stop_lock(&stop_mu_);
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    primary_cv_.SignalAll();
    helper_cv_.SignalAll();
  }
  for (std::thread& writer : writers_) {
    if (writer.joinable()) writer.join();
  }
}

const QualityScorer& ExecutionIngestor::ScorerFor(const std::string& pipeline) const {
  auto it = scorers_.find(pipeline);
  return it != scorers_.end() ? *it->second : *default_scorer_;
}

double ExecutionIngestor::QualityOf(const ExecutionInput& record) const {
  if (record.quality_score.has_value()) return *record.quality_score;
  return ScorerFor(record.pipeline_name)
      .Score(record.success, ParseObject(record.input_json), ParseObject(record.output_json),
             ParseObject(record.metadata_json));
}

nlohmann::json ExecutionIngestor::PipelineConfig(const std::string& pipeline,
                                                 int64_t program_version) {
  const absl::Time now = clock_->Now();
  nlohmann::json config;
  bool cached = false;
  {
    absl::MutexLock lock(&config_mu_);
    auto it = configs_.find(pipeline);
    if (it != configs_.end() && now - it->second.fetched < options_.pipeline_config_ttl) {
      config = it->second.config;
      cached = true;
    }
  }
  if (!cached) {
    config = {{"name", pipeline}};
    auto registered = options_.store->GetPipeline(pipeline);
    if (registered.ok()) {
      config["revision"] = registered->revision;
      if (registered->yaml.size() <= kMaxEmbeddedYamlBytes) config["yaml"] = registered->yaml;
    }
    absl::MutexLock lock(&config_mu_);
    if (configs_.size() >= kMaxCachedConfigs) configs_.clear();
    configs_[pipeline] = CachedConfig{config, now};
  }
  config["program_version"] = program_version;
  return config;
}

absl::Status ExecutionIngestor::Ingest(std::vector<ExecutionInput> records, Done done) {
  Submission submission;
  submission.rows.reserve(records.size());
  const absl::Time now = clock_->Now();
  for (ExecutionInput& record : records) {
    const double quality = QualityOf(record);
    const LearningConfig::HarvestRule harvest = options_.config.HarvestFor(record.pipeline_name);
    store::ExecutionRecordRow row;
    // Chosen here rather than by the store so a harvested example can name its execution;
    // time-ordered so inserts append to the id index.
    row.id = TimeOrderedHexId();
    row.record_id = record.record_id;
    row.pipeline_name = record.pipeline_name;
    row.program_version = record.program_version;
    row.success = record.success;
    row.duration_seconds = record.duration_seconds;
    row.quality_score = quality;
    row.input_json = std::move(record.input_json);
    row.output_json = std::move(record.output_json);
    row.metadata_json = std::move(record.metadata_json);
    row.time = record.time == store::kUnsetTime ? now : record.time;
    if (ShouldHarvest(record.success, quality, harvest.threshold)) {
      HarvestSource source;
      source.pipeline_name = record.pipeline_name;
      source.program_version = record.program_version;
      source.execution_id = row.id;
      source.execution_metadata = ParseObject(row.metadata_json);
      source.quality_score = quality;
      source.pipeline_config = PipelineConfig(record.pipeline_name, record.program_version);
      row.harvest = HarvestedExample(harvest.dataset, row.input_json, row.output_json, source);
    }
    submission.rows.push_back(std::move(row));
  }
  submission.done = std::move(done);
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("the server is shutting down");
  if (queued_rows_ > 0 && queued_rows_ + submission.rows.size() > options_.max_queued_rows) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "ingestion queue full (", queued_rows_, " records waiting for the store); retry later"));
  }
  queued_rows_ += submission.rows.size();
  SetIngestQueueDepth(static_cast<int64_t>(queued_rows_));
  queue_.push_back(std::move(submission));
  // Work goes to the primary writer whenever it is idle: letting idle writers take turns
  // measured ~10% fewer records/s at unary load, with never more than one commit in flight.
  if (MayCommitLocked()) {
    if (primary_idle_ > 0) {
      primary_cv_.Signal();
    } else if (helpers_idle_ > 0) {
      helper_cv_.Signal();
    }
  }
  return absl::OkStatus();
}

bool ExecutionIngestor::MayCommitLocked() const {
  if (queue_.empty()) return false;
  return stopping_ || commits_in_flight_ == 0 || queued_rows_ >= options_.parallel_commit_rows;
}

void ExecutionIngestor::WriterLoop(bool primary) {
  absl::MutexLock lock(&mu_);
  int& idle = primary ? primary_idle_ : helpers_idle_;
  absl::CondVar& wake = primary ? primary_cv_ : helper_cv_;
  while (true) {
    while (!MayCommitLocked()) {
      if (stopping_ && queue_.empty()) return;  // everything was committed
      ++idle;
      wake.Wait(&mu_);
      --idle;
    }
    // Everything that queued up while the previous commit ran goes into this one.
    std::vector<Submission> batch;
    size_t rows = 0;
    while (!queue_.empty() &&
           (batch.empty() || rows + queue_.front().rows.size() <= options_.max_commit_rows)) {
      rows += queue_.front().rows.size();
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    queued_rows_ -= rows;
    ++commits_in_flight_;
    SetIngestQueueDepth(static_cast<int64_t>(queued_rows_));
    // What this commit could not take (max_commit_rows) may be enough for a helper now.
    if (helpers_idle_ > 0 && MayCommitLocked()) helper_cv_.Signal();
    mu_.Unlock();
    Commit(std::move(batch));
    mu_.Lock();
    // This writer looks at the queue again itself: waking another for it would only add a
    // context switch per commit.
    --commits_in_flight_;
  }
}

void ExecutionIngestor::Commit(std::vector<Submission> batch) {
  std::vector<store::ExecutionRecordRow> rows;
  std::vector<size_t> sizes;
  for (Submission& s : batch) {
    sizes.push_back(s.rows.size());
    for (auto& row : s.rows) rows.push_back(std::move(row));
  }
  const absl::Time started = absl::Now();
  auto stored = options_.store->InsertExecutions(rows);
  // Another process may have drawn the same time-ordered id (same millisecond and counter):
  // such rows get a new id (and their example the new execution_id) and go again.
  for (int attempt = 0; stored.ok() && attempt < 3; ++attempt) {
    std::vector<size_t> collided;
    for (size_t i = 0; i < rows.size(); ++i) {
      if (absl::IsAlreadyExists((*stored)[i].status)) collided.push_back(i);
    }
    if (collided.empty()) break;
    std::vector<store::ExecutionRecordRow> again;
    for (size_t i : collided) {
      rows[i].id = TimeOrderedHexId();
      if (rows[i].harvest.has_value()) {
        nlohmann::json metadata = nlohmann::json::parse(rows[i].harvest->metadata_json);
        metadata["execution_id"] = rows[i].id;
        rows[i].harvest->metadata_json = metadata.dump();
      }
      again.push_back(rows[i]);
    }
    auto retried = options_.store->InsertExecutions(again);
    if (!retried.ok()) break;  // the first commit's rows are durable; these stay rejected
    for (size_t k = 0; k < collided.size(); ++k) (*stored)[collided[k]] = (*retried)[k];
  }
  RecordCommit(rows.size(), absl::ToDoubleSeconds(absl::Now() - started));
  if (!stored.ok()) {
    logging::Warning("execution commit failed",
                     {{"rows", rows.size()}, {"error", stored.status().ToString()}});
  }
  std::map<std::string, PipelineIngest> per_pipeline;
  std::vector<std::vector<IngestResult>> results_per_submission;
  size_t offset = 0;
  for (size_t b = 0; b < batch.size(); ++b) {
    std::vector<IngestResult>& results = results_per_submission.emplace_back(sizes[b]);
    for (size_t i = 0; i < results.size(); ++i, ++offset) {
      IngestResult& r = results[i];
      const store::ExecutionRecordRow& row = rows[offset];
      PipelineIngest& counts = per_pipeline[row.pipeline_name];
      r.quality_score = row.quality_score;
      r.status = stored.ok() ? (*stored)[offset].status : stored.status();
      if (!r.status.ok()) {
        ++counts.rejected;
        continue;
      }
      const store::ExecutionInsertResult& result = (*stored)[offset];
      r.id = result.id;
      r.duplicate = result.duplicate;
      r.harvested = !result.example_id.empty();
      if (r.duplicate) {
        ++counts.duplicates;
        continue;
      }
      ++counts.accepted;
      counts.harvested += r.harvested ? 1 : 0;
      counts.durations.push_back(row.duration_seconds);
      counts.qualities.push_back(r.quality_score);
    }
  }
  // Metrics first: a caller that reads /metrics right after its acknowledgement sees its
  // records counted.
  for (const auto& [pipeline, counts] : per_pipeline) RecordIngested(pipeline, counts);
  for (size_t b = 0; b < batch.size(); ++b) batch[b].done(std::move(results_per_submission[b]));
}

}  // namespace elexirion::learning
