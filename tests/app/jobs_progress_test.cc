// Job progress and promotion over gRPC against real HTTP to the fake provider: the ETA in
// progress events, a watcher that does not read, and promote-if-better re-scoring the
// production program on the new job's own validation set.
#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/store/store.h"
#include "tests/fakes/fake_provider_server.h"
#include "tests/testutil/test_server.h"

namespace elexirion {
namespace {

using testutil::InProcessServer;
using testutil::TempDir;

// The bundled code-analysis examples, in file order.
int64_t TimeMs(const v1::ProgressEvent& event) {
  return google::protobuf::util::TimeUtil::TimestampToMilliseconds(event.time());
}

std::vector<v1::Example> BundledExamples() {
  std::vector<std::filesystem::path> files;
  for (const auto& e :
       std::filesystem::directory_iterator(testutil::CodeAnalysisExample("examples"))) {
    files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<v1::Example> out;
  for (const auto& f : files) {
    v1::Example example;
    EXPECT_TRUE(
        google::protobuf::util::JsonStringToMessage(testutil::ReadFile(f.string()), &example).ok());
    out.push_back(example);
  }
  return out;
}

std::string Field(const v1::Example& e, const char* group, const char* name) {
  const auto& s = std::string(group) == "input" ? e.input() : e.expected_output();
  auto it = s.fields().find(name);
  return it == s.fields().end() ? "" : it->second.string_value();
}

fakes::FakeResponse SeverityAnswer(const std::string& severity) {
  return fakes::FakeResponse::Text(
      absl::StrCat("[[ ## severity ## ]]\n", severity,
                   "\n\n[[ ## findings ## ]]\nno issues\n\n[[ ## recommendations ## ]]\nnone\n\n"
                   "[[ ## completed ## ]]\n"));
}

class JobsProgressTest : public ::testing::Test {
 protected:
  void StartServer(absl::Duration latency, fakes::FakeProviderServer::Handler handler) {
    auto fake = fakes::FakeProviderServer::Start();
    ASSERT_TRUE(fake.ok()) << fake.status();
    fake_ = std::move(*fake);
    fake_->SetHandler(std::move(handler));
    fake_->SetLatency(latency);
    config::ServerConfig config = testutil::TestConfig(dir_);
    config.jobs.workers = 1;
    config.jobs.poll = absl::Milliseconds(50);
    config.jobs.heartbeat = absl::Milliseconds(100);
    std::string key = dir_.Write("anthropic.key", "sk-ant-CANARY-progress-0001");
    config.llm = YAML::Load(testutil::FakeAnthropicProviders(fake_->base_url(), key));
    auto server = InProcessServer::Start(config);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    client_ = server_->NewClient();
  }

  static v1::OptimizeModuleRequest Request(const std::string& name,
                                           const std::vector<v1::Example>& trainset,
                                           const std::vector<v1::Example>& valset) {
    v1::OptimizeModuleRequest request;
    request.mutable_pipeline()->set_yaml(
        testutil::ReadFile(testutil::CodeAnalysisExample("pipeline.yaml")));
    request.set_program_name(name);
    for (const auto& e : trainset)
      *request.mutable_trainset()->mutable_inline_()->add_examples() = e;
    for (const auto& e : valset) *request.mutable_valset()->mutable_inline_()->add_examples() = e;
    request.mutable_metric()->mutable_exact_match()->set_field("severity");
    return request;
  }

  v1::Job Submit(const v1::OptimizeModuleRequest& request) {
    return testutil::SubmitJob(*client_, request);
  }

  v1::Job GetJob(const std::string& id) { return testutil::GetJob(*client_, id); }

  // Polls until the job succeeded or failed (or a minute passed); returns it as last seen.
  v1::Job WaitUntilEnded(const std::string& id) {
    v1::Job job;
    for (int i = 0; i < 1200; ++i) {
      job = GetJob(id);
      if (job.state() == v1::JOB_STATE_SUCCEEDED || job.state() == v1::JOB_STATE_FAILED) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return job;
  }

  // Every event of the job, following it until it ends.
  // Runs BootstrapFewShot over 16 training examples, every one bootstrapped (only "medium"
  // traces pass), `num_threads` at a time, with no provider latency; returns the job's
  // events, which end in success.
  std::vector<v1::ProgressEvent> RunBootstrap(const std::string& name, int num_threads) {
    StartServer(absl::ZeroDuration(),
                [](const fakes::RecordedRequest&) { return SeverityAnswer("medium"); });
    const auto examples = BundledExamples();
    auto request = Request(name, {examples.begin(), examples.begin() + 16},
                           {examples.begin() + 16, examples.end()});
    request.mutable_optimizer()->mutable_bootstrap_few_shot()->set_max_bootstrapped_demos(50);
    request.mutable_optimizer()->set_num_threads(num_threads);
    auto events = Stream(Submit(request).id());
    EXPECT_FALSE(events.empty());
    if (!events.empty()) {
      EXPECT_EQ(events.back().state_changed().state(), v1::JOB_STATE_SUCCEEDED);
    }
    return events;
  }

  std::vector<v1::ProgressEvent> Stream(const std::string& id) {
    grpc::ClientContext context;
    client_->Prepare(&context, absl::Seconds(120));
    v1::StreamProgressRequest request;
    request.set_job_id(id);
    auto reader = client_->optimizer().StreamProgress(&context, request);
    std::vector<v1::ProgressEvent> events;
    v1::ProgressEvent event;
    while (reader->Read(&event)) events.push_back(event);
    EXPECT_TRUE(reader->Finish().ok());
    return events;
  }

  // Every event of the job through StreamProgressBatches, and the batch sizes.
  std::vector<v1::ProgressEvent> StreamBatches(const std::string& id, int64_t after_seq,
                                               std::vector<int>* sizes) {
    grpc::ClientContext context;
    client_->Prepare(&context, absl::Seconds(120));
    v1::StreamProgressRequest request;
    request.set_job_id(id);
    request.set_after_seq(after_seq);
    auto reader = client_->optimizer().StreamProgressBatches(&context, request);
    std::vector<v1::ProgressEvent> events;
    v1::ProgressEventBatch batch;
    while (reader->Read(&batch)) {
      sizes->push_back(batch.events_size());
      events.insert(events.end(), batch.events().begin(), batch.events().end());
    }
    EXPECT_TRUE(reader->Finish().ok());
    return events;
  }

  // Runs a job to its end; returns its summary event.
  v1::ProgressEvent::Summary Run(const v1::OptimizeModuleRequest& request, v1::Job* ended) {
    v1::Job job = Submit(request);
    v1::ProgressEvent::Summary summary;
    for (const auto& e : Stream(job.id())) {
      if (e.has_summary()) summary = e.summary();
    }
    *ended = GetJob(job.id());
    return summary;
  }

  int64_t ProductionVersion(const std::string& name) {
    grpc::ClientContext context;
    client_->Prepare(&context);
    v1::GetProgramRequest get;
    get.mutable_program()->set_name(name);
    get.mutable_program()->set_label("production");
    v1::Program program;
    grpc::Status status = client_->programs().GetProgram(&context, get, &program);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return program.version();
  }

  nlohmann::json StoredScores(const std::string& name, int64_t version) {
    auto record = server_->server().store()->GetProgram(name, version);
    EXPECT_TRUE(record.ok()) << record.status();
    if (!record.ok()) return nullptr;
    return nlohmann::json::parse(record->scores_json, nullptr, false);
  }

  TempDir dir_;
  std::unique_ptr<fakes::FakeProviderServer> fake_;
  std::unique_ptr<InProcessServer> server_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(JobsProgressTest, EtaIsPositiveWhileRunningAndZeroAtTheEnd) {
  StartServer(absl::Milliseconds(30),
              [](const fakes::RecordedRequest&) { return SeverityAnswer("medium"); });
  const auto examples = BundledExamples();
  auto request = Request("eta", {examples.begin(), examples.begin() + 16},
                         {examples.begin() + 16, examples.end()});
  // Bootstrap every training example (only "medium" traces pass), two at a time, so there
  // is measurable work between the baseline and the final evaluation.
  request.mutable_optimizer()->mutable_bootstrap_few_shot()->set_max_bootstrapped_demos(50);
  request.mutable_optimizer()->set_num_threads(2);
  v1::Job job = Submit(request);
  auto events = Stream(job.id());
  ASSERT_FALSE(events.empty());
  ASSERT_EQ(events.back().state_changed().state(), v1::JOB_STATE_SUCCEEDED);

  std::vector<double> running_etas;  // positive ETAs, in order
  const v1::JobProgress* last_snapshot = nullptr;
  for (const auto& e : events) {
    if (!e.has_usage()) continue;
    last_snapshot = &e.usage();
    if (e.usage().eta_seconds() > 0) running_etas.push_back(e.usage().eta_seconds());
  }
  ASSERT_GE(running_etas.size(), 3u) << "ETA snapshots with a positive estimate";
  // The estimate comes down as work gets done.
  EXPECT_LT(running_etas.back(), *std::max_element(running_etas.begin(), running_etas.end()));
  // The last snapshot, after the work, says nothing is left; so does the ended job.
  ASSERT_NE(last_snapshot, nullptr);
  EXPECT_EQ(last_snapshot->eta_seconds(), 0);
  EXPECT_EQ(GetJob(job.id()).progress().eta_seconds(), 0);
}

// Fast calls used to bring a burst of ETA snapshots (one per 5% of the work), each an event
// written to every watcher: several within a millisecond here. Between phase changes (the
// bootstrap phase runs from its first to its last bootstrap event) they are now at least
// 250 ms apart.
TEST_F(JobsProgressTest, EtaSnapshotsWithinAPhaseAreAtLeastAQuarterSecondApart) {
  // One example at a time: a bootstrap event after each.
  const auto events = RunBootstrap("eta_burst", /*num_threads=*/1);
  size_t first = events.size(), last = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    if (!events[i].has_bootstrap()) continue;
    first = std::min(first, i);
    last = i;
  }
  ASSERT_LT(first, last) << "bootstrap progress events";
  EXPECT_EQ(events[last].bootstrap().done(), 16);
  std::optional<int64_t> previous_ms;
  for (size_t i = first; i < last; ++i) {
    if (!events[i].has_usage()) continue;
    const int64_t ms = TimeMs(events[i]);
    if (previous_ms.has_value()) {
      // The throttle reads the clock when it takes the snapshot, the event is stamped when
      // it is stored: allow for the difference.
      EXPECT_GE(ms - *previous_ms, 200) << "ETA snapshots at events " << i << " and before";
    }
    previous_ms = ms;
  }
}

// The examples of a parallel window are decided at one moment: one bootstrap event with the
// totals after each window, not a burst of one per example (each written to every watcher).
TEST_F(JobsProgressTest, BootstrapProgressComesOncePerParallelWindow) {
  const auto events = RunBootstrap("windows", /*num_threads=*/8);
  std::vector<int> done;
  int accepted = 0;
  for (const auto& e : events) {
    if (!e.has_bootstrap()) continue;
    EXPECT_EQ(e.bootstrap().step(), "bootstrap");
    EXPECT_EQ(e.bootstrap().total(), 16);
    EXPECT_GE(e.bootstrap().accepted(), accepted);
    accepted = e.bootstrap().accepted();
    done.push_back(e.bootstrap().done());
  }
  EXPECT_THAT(done, ::testing::ElementsAre(8, 16)) << "two windows of 8";
  EXPECT_GT(accepted, 0);
}

// A watcher that never reads while the job runs costs the job nothing (it ends while the
// watcher's stream is stalled) and, once it reads, gets every event in order.
TEST_F(JobsProgressTest, StalledWatcherDoesNotHoldTheJobAndMissesNothing) {
  StartServer(absl::ZeroDuration(),
              [](const fakes::RecordedRequest&) { return SeverityAnswer("medium"); });
  const auto examples = BundledExamples();
  auto request = Request("stalled", {examples.begin(), examples.begin() + 16},
                         {examples.begin() + 16, examples.end()});
  // Many candidates, each bootstrapping over the trainset: well over a thousand events,
  // far beyond the watcher's live buffer and the stream's flow-control window.
  auto* search = request.mutable_optimizer()->mutable_bootstrap_random_search();
  search->set_num_candidate_programs(60);
  search->set_max_bootstrapped_demos(50);
  // One example at a time, so a bootstrap event after each.
  request.mutable_optimizer()->set_num_threads(1);
  v1::Job job = Submit(request);

  grpc::ClientContext context;
  client_->Prepare(&context, absl::Seconds(300));
  v1::StreamProgressRequest watch;
  watch.set_job_id(job.id());
  auto reader = client_->optimizer().StreamProgress(&context, watch);

  // The job ends while nobody reads the stream.
  v1::Job ended = WaitUntilEnded(job.id());
  ASSERT_EQ(ended.state(), v1::JOB_STATE_SUCCEEDED) << ended.DebugString();
  ASSERT_GT(ended.last_event_seq(), 1000) << "the job must outrun the watcher's buffers";

  std::vector<int64_t> seqs;
  v1::ProgressEvent event, last;
  while (reader->Read(&event)) {
    seqs.push_back(event.seq());
    last = event;
  }
  ASSERT_TRUE(reader->Finish().ok());
  ASSERT_EQ(seqs.size(), static_cast<size_t>(ended.last_event_seq()));
  for (size_t i = 0; i < seqs.size(); ++i) {
    ASSERT_EQ(seqs[i], static_cast<int64_t>(i + 1)) << "at position " << i;
  }
  EXPECT_EQ(last.state_changed().state(), v1::JOB_STATE_SUCCEEDED);
}

// StreamProgressBatches carries exactly StreamProgress's events: live while the job runs,
// replayed after it ended, and from a caller's after_seq; never an empty batch.
TEST_F(JobsProgressTest, BatchesCarryTheSameEventsAsSingleEvents) {
  StartServer(absl::Milliseconds(5),
              [](const fakes::RecordedRequest&) { return SeverityAnswer("medium"); });
  const auto examples = BundledExamples();
  auto request = Request("batches", {examples.begin(), examples.begin() + 12},
                         {examples.begin() + 12, examples.end()});
  request.mutable_optimizer()->mutable_bootstrap_random_search()->set_num_candidate_programs(4);
  v1::Job job = Submit(request);
  std::vector<int> live_sizes;
  std::vector<v1::ProgressEvent> batched_live;
  std::thread follower([&] { batched_live = StreamBatches(job.id(), 0, &live_sizes); });
  const std::vector<v1::ProgressEvent> single = Stream(job.id());
  follower.join();
  ASSERT_GT(single.size(), 20u);
  EXPECT_EQ(single.back().state_changed().state(), v1::JOB_STATE_SUCCEEDED);

  std::vector<int> replay_sizes, resume_sizes;
  std::vector<v1::ProgressEvent> batched_replay = StreamBatches(job.id(), 0, &replay_sizes);
  const std::vector<v1::ProgressEvent> resumed = StreamBatches(job.id(), 10, &resume_sizes);
  for (const auto* got : {&batched_live, &batched_replay}) {
    ASSERT_EQ(got->size(), single.size());
    for (size_t i = 0; i < single.size(); ++i) {
      ASSERT_TRUE(google::protobuf::util::MessageDifferencer::Equals((*got)[i], single[i]))
          << "event " << i << ": " << (*got)[i].DebugString() << " vs " << single[i].DebugString();
    }
  }
  ASSERT_EQ(resumed.size(), single.size() - 10);
  EXPECT_EQ(resumed.front().seq(), 11);
  for (const auto* sizes : {&live_sizes, &replay_sizes, &resume_sizes}) {
    for (int n : *sizes) {
      EXPECT_GE(n, 1);
      EXPECT_LE(n, 256);
    }
  }
  // An ended job's events are all ready at once: far fewer messages than events.
  EXPECT_LT(replay_sizes.size(), single.size() / 4);
}

// Bad requests get the same answers as on StreamProgress, and the server stays healthy.
TEST_F(JobsProgressTest, BadBatchRequestsNameTheField) {
  StartServer(absl::ZeroDuration(),
              [](const fakes::RecordedRequest&) { return SeverityAnswer("medium"); });
  auto status_of = [&](const std::string& job_id, int64_t after_seq) {
    grpc::ClientContext context;
    client_->Prepare(&context);
    v1::StreamProgressRequest request;
    request.set_job_id(job_id);
    request.set_after_seq(after_seq);
    auto reader = client_->optimizer().StreamProgressBatches(&context, request);
    v1::ProgressEventBatch batch;
    EXPECT_FALSE(reader->Read(&batch));
    return reader->Finish();
  };
  grpc::Status missing = status_of("", 0);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(missing.error_message(), ::testing::HasSubstr("job_id"));
  grpc::Status unknown = status_of("no-such-job", 0);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND);
  const auto examples = BundledExamples();
  auto request = Request("bad-batches", {examples.begin(), examples.begin() + 4},
                         {examples.begin() + 4, examples.begin() + 8});
  request.mutable_optimizer()->mutable_labeled_few_shot()->set_k(2);
  v1::Job job = Submit(request);
  grpc::Status negative = status_of(job.id(), -1);
  EXPECT_EQ(negative.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(negative.error_message(), ::testing::HasSubstr("after_seq"));
  // Still serving: the job runs to its end and can be followed.
  EXPECT_EQ(Stream(job.id()).back().state_changed().state(), v1::JOB_STATE_SUCCEEDED);

  // Streams are not intercepted (per-message cost) but still counted. (Metrics are
  // process-wide: earlier tests in this binary add to the counts.)
  auto metrics = testutil::HttpGet(server_->http_port(), "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_THAT(metrics->second,
              ::testing::HasSubstr("elexirion_rpc_requests_total{code=\"INVALID_ARGUMENT\","
                                   "method=\"/elexirion.v1.OptimizerService/"
                                   "StreamProgressBatches\"} "));
  EXPECT_THAT(metrics->second,
              ::testing::HasSubstr("elexirion_rpc_requests_total{code=\"NOT_FOUND\",method=\"/"
                                   "elexirion.v1.OptimizerService/StreamProgressBatches\"} "));
  EXPECT_THAT(metrics->second,
              ::testing::HasSubstr("elexirion_rpc_requests_total{code=\"OK\",method=\"/"
                                   "elexirion.v1.OptimizerService/StreamProgress\"} "));
}

// A batch watcher that does not read while the job runs costs the job nothing and gets every
// event in order once it does.
TEST_F(JobsProgressTest, StalledBatchWatcherMissesNothing) {
  StartServer(absl::ZeroDuration(),
              [](const fakes::RecordedRequest&) { return SeverityAnswer("medium"); });
  const auto examples = BundledExamples();
  auto request = Request("stalled-batches", {examples.begin(), examples.begin() + 16},
                         {examples.begin() + 16, examples.end()});
  auto* search = request.mutable_optimizer()->mutable_bootstrap_random_search();
  search->set_num_candidate_programs(60);
  search->set_max_bootstrapped_demos(50);
  // One example at a time, so a bootstrap event after each.
  request.mutable_optimizer()->set_num_threads(1);
  v1::Job job = Submit(request);

  grpc::ClientContext context;
  client_->Prepare(&context, absl::Seconds(300));
  v1::StreamProgressRequest watch;
  watch.set_job_id(job.id());
  auto reader = client_->optimizer().StreamProgressBatches(&context, watch);
  v1::Job ended = WaitUntilEnded(job.id());
  ASSERT_EQ(ended.state(), v1::JOB_STATE_SUCCEEDED) << ended.DebugString();
  ASSERT_GT(ended.last_event_seq(), 1000);

  std::vector<int64_t> seqs;
  size_t messages = 0;
  int largest = 0;
  v1::ProgressEventBatch batch;
  while (reader->Read(&batch)) {
    ++messages;
    ASSERT_GT(batch.events_size(), 0);
    ASSERT_LE(batch.events_size(), 256);
    largest = std::max(largest, batch.events_size());
    for (const auto& event : batch.events()) seqs.push_back(event.seq());
  }
  ASSERT_TRUE(reader->Finish().ok());
  ASSERT_EQ(seqs.size(), static_cast<size_t>(ended.last_event_seq()));
  for (size_t i = 0; i < seqs.size(); ++i) {
    ASSERT_EQ(seqs[i], static_cast<int64_t>(i + 1)) << "at position " << i;
  }
  // The job's events come in bursts (parallel calls finishing together): a burst that
  // arrives while a write is in flight goes out as one message.
  EXPECT_LT(messages, seqs.size()) << "largest batch " << largest;
}

// The fake model answers with the right severity only when the prompt carries at least
// three demos; otherwise it says "medium". So a program's score depends on its demo count and
// on the validation set it is scored on.
class PromoteTest : public JobsProgressTest {
 protected:
  void SetUp() override {
    examples_ = BundledExamples();
    std::map<std::string, std::string> severity_of;  // code -> expected severity
    for (const auto& e : examples_) {
      severity_of[Field(e, "input", "code")] = Field(e, "expected_output", "severity");
    }
    StartServer(absl::ZeroDuration(), [severity_of](const fakes::RecordedRequest& r) {
      const nlohmann::json body = r.Json();
      const size_t messages = body.contains("messages") ? body["messages"].size() : 0;
      const size_t demos = messages > 0 ? (messages - 1) / 2 : 0;
      const std::string text = r.LastUserText();
      std::string code, severity = "medium";
      for (const auto& [c, s] : severity_of) {
        if (c.size() > code.size() && text.find(c) != std::string::npos) {
          code = c;
          if (demos >= 3) severity = s;
        }
      }
      return SeverityAnswer(severity);
    });
    trainset_.assign(examples_.begin(), examples_.begin() + 12);
    valset_.assign(examples_.begin() + 12, examples_.end());
  }

  // Few demos (at most two): always "medium". Many demos: always right.
  v1::OptimizeModuleRequest Job(const std::vector<v1::Example>& valset, bool many_demos) {
    auto request = Request("promoted", trainset_, valset);
    auto* bootstrap = request.mutable_optimizer()->mutable_bootstrap_few_shot();
    bootstrap->set_max_bootstrapped_demos(many_demos ? 4 : 1);
    bootstrap->set_max_labeled_demos(many_demos ? 8 : 2);
    return request;
  }

  std::vector<v1::Example> examples_, trainset_, valset_;
};

TEST_F(PromoteTest, ComparesWithProductionOnThisJobsValidationSet) {
  // v1 is scored on a validation set nobody can pass: its stored score is 0.
  std::vector<v1::Example> impossible = valset_;
  for (auto& e : impossible) {
    (*e.mutable_expected_output()->mutable_fields())["severity"].set_string_value("bogus");
  }
  v1::Job ended;
  auto first = Run(Job(impossible, /*many_demos=*/false), &ended);
  ASSERT_EQ(ended.state(), v1::JOB_STATE_SUCCEEDED) << ended.DebugString();
  EXPECT_EQ(first.best_score(), 0);
  EXPECT_TRUE(first.promoted());
  EXPECT_EQ(ProductionVersion("promoted"), 1);

  // The same program on a real validation set scores above v1's stored 0, but exactly as
  // much as v1 does on this set: not better, so not promoted.
  auto second = Run(Job(valset_, /*many_demos=*/false), &ended);
  ASSERT_EQ(ended.state(), v1::JOB_STATE_SUCCEEDED) << ended.DebugString();
  EXPECT_GT(second.best_score(), 0);
  EXPECT_EQ(second.program_version(), 2);
  EXPECT_FALSE(second.promoted());
  EXPECT_EQ(ProductionVersion("promoted"), 1);
  nlohmann::json scores = StoredScores("promoted", 2);
  ASSERT_TRUE(scores.is_object());
  EXPECT_DOUBLE_EQ(scores.value("production_validation", -1.0), second.best_score());
  EXPECT_EQ(scores.value("production_version", 0), 1);
  EXPECT_EQ(scores["report"].value("reference_score", -1.0), second.best_score());

  // More demos answer every example right: strictly better than v1 on this set.
  auto third = Run(Job(valset_, /*many_demos=*/true), &ended);
  ASSERT_EQ(ended.state(), v1::JOB_STATE_SUCCEEDED) << ended.DebugString();
  EXPECT_EQ(third.best_score(), 100);
  EXPECT_TRUE(third.promoted());
  EXPECT_EQ(ProductionVersion("promoted"), 3);
  EXPECT_DOUBLE_EQ(StoredScores("promoted", 3).value("production_validation", -1.0),
                   second.best_score());
}

TEST_F(PromoteTest, ProductionThatNoLongerFitsThePipelineIsNotReplaced) {
  v1::Job ended;
  auto first = Run(Job(valset_, /*many_demos=*/false), &ended);
  EXPECT_TRUE(first.promoted());
  // The step is renamed: v1's saved program has no predictor of that name any more.
  auto request = Job(valset_, /*many_demos=*/true);
  request.mutable_pipeline()->set_yaml(absl::StrReplaceAll(
      request.pipeline().yaml(), {{"name: analyze_code", "name: review_code"}}));
  auto second = Run(request, &ended);
  ASSERT_EQ(ended.state(), v1::JOB_STATE_SUCCEEDED) << ended.DebugString();
  EXPECT_EQ(second.best_score(), 100);
  EXPECT_FALSE(second.promoted());
  EXPECT_EQ(ProductionVersion("promoted"), 1);
  nlohmann::json scores = StoredScores("promoted", 2);
  ASSERT_TRUE(scores.is_object());
  EXPECT_FALSE(scores.contains("production_validation"));
  EXPECT_THAT(scores["report"].value("reference_error", ""),
              ::testing::HasSubstr("does not fit this pipeline"));
}

}  // namespace
}  // namespace elexirion
