// The persistent LLM cache over a real SQLite store.
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/common/ids.h"
#include "server/llm/store_llm_cache.h"
#include "server/store/sqlite_store.h"
#include "tests/fakes/fake_provider_server.h"
#include "tests/llm/llm_test_util.h"

namespace elexirion::llm {
namespace {

using ::elexirion::fakes::FakeProviderServer;
using ::elexirion::fakes::FakeResponse;
using ::testing::HasSubstr;
using ::testing::Not;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(StoreLlmCacheTest, HitsSurviveARestartAndHoldNoKey) {
  const std::string dir = absl::StrCat(::testing::TempDir(), "/llmcache-", RandomHexId(8));
  const std::string path = dir + "/elexirion.db";
  const std::string key = "sk-ant-CANARY-store-0123456789abcdef";
  auto server = FakeProviderServer::Start();
  ASSERT_TRUE(server.ok());
  FakeResponse answer = FakeResponse::Text("persisted answer");
  answer.input_tokens = 40;
  answer.output_tokens = 4;
  (*server)->SetHandler([answer](const fakes::RecordedRequest&) { return answer; });

  testing::RouterSetup setup;
  setup.yaml = absl::StrCat("providers: {anthropic: {base_url: '", (*server)->base_url(), "'}}");
  setup.env = {{"ANTHROPIC_API_KEY", key}};
  LlmRequest request = testing::UserRequest("anthropic", "What is stored?");
  request.model = "haiku";
  {
    store::SqliteStore::Options o;
    o.path = path;
    auto db = store::SqliteStore::Create(o);
    ASSERT_TRUE(db.ok()) << db.status();
    setup.cache = std::make_shared<StoreLlmCache>(db->get());
    auto router = testing::MakeRouter(setup);
    ASSERT_NE(router, nullptr);
    absl::StatusOr<LlmResponse> first = router->Complete(request, {});
    ASSERT_TRUE(first.ok()) << first.status();
    EXPECT_FALSE(first->cache_hit);
    EXPECT_TRUE(router->Complete(request, {})->cache_hit);
  }
  EXPECT_EQ((*server)->request_count(), 1);
  {
    store::SqliteStore::Options o;
    o.path = path;
    auto db = store::SqliteStore::Create(o);
    ASSERT_TRUE(db.ok()) << db.status();
    setup.cache = std::make_shared<StoreLlmCache>(db->get());
    auto router = testing::MakeRouter(setup);
    ASSERT_NE(router, nullptr);
    absl::StatusOr<LlmResponse> again = router->Complete(request, {});
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_TRUE(again->cache_hit);
    EXPECT_EQ(again->text, "persisted answer");
    EXPECT_EQ(again->input_tokens, 0);
    EXPECT_EQ(again->model, "claude-haiku-4-5");
    ASSERT_TRUE((*db)->IntegrityCheck().ok());
  }
  EXPECT_EQ((*server)->request_count(), 1);
  // Neither the key nor the base URL reached the database (main file or WAL).
  const std::string bytes = ReadAll(path) + ReadAll(path + "-wal");
  EXPECT_THAT(bytes, HasSubstr("persisted answer"));
  EXPECT_THAT(bytes, Not(HasSubstr(key)));
  EXPECT_THAT(bytes, Not(HasSubstr("CANARY")));
  EXPECT_THAT(bytes, Not(HasSubstr((*server)->base_url())));
}

}  // namespace
}  // namespace elexirion::llm
