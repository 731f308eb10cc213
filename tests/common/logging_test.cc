#include "server/common/logging.h"

#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace elexirion::logging {
namespace {

TEST(LoggingTest, WritesOneJsonObjectPerLine) {
  std::string sink;
  SetSinkForTest(&sink);
  Info("started", {{"port", 50051}});
  SetSinkForTest(nullptr);
  ASSERT_FALSE(sink.empty());
  EXPECT_EQ(sink.back(), '\n');
  auto line = nlohmann::json::parse(sink);
  EXPECT_EQ(line["level"], "info");
  EXPECT_EQ(line["msg"], "started");
  EXPECT_EQ(line["port"], 50051);
  EXPECT_TRUE(line.contains("ts"));
}

TEST(LoggingTest, RedactsRegisteredSecretsEverywhere) {
  RegisterSecret("sk-CANARY-logging-0001");
  std::string sink;
  SetSinkForTest(&sink);
  Error("provider said sk-CANARY-logging-0001 is bad",
        {{"body", "{\"key\":\"sk-CANARY-logging-0001\"}"}});
  SetSinkForTest(nullptr);
  EXPECT_EQ(sink.find("sk-CANARY-logging-0001"), std::string::npos) << sink;
  EXPECT_NE(sink.find("[REDACTED]"), std::string::npos);
}

TEST(LoggingTest, DropsLinesBelowMinLevel) {
  std::string sink;
  SetSinkForTest(&sink);
  SetMinLevel(Level::kWarning);
  Info("hidden");
  Warning("shown");
  SetMinLevel(Level::kInfo);
  SetSinkForTest(nullptr);
  EXPECT_EQ(sink.find("hidden"), std::string::npos);
  EXPECT_NE(sink.find("shown"), std::string::npos);
}

TEST(LoggingTest, ParsesLevels) {
  Level level;
  EXPECT_TRUE(ParseLevel("warn", &level));
  EXPECT_EQ(level, Level::kWarning);
  EXPECT_FALSE(ParseLevel("loud", &level));
}

TEST(LoggingTest, InvalidUtf8DoesNotThrow) {
  std::string sink;
  SetSinkForTest(&sink);
  Info(std::string("bad \xff\xfe bytes"));
  SetSinkForTest(nullptr);
  EXPECT_NO_THROW(nlohmann::json::parse(sink));
}

}  // namespace
}  // namespace elexirion::logging
