#include "server/common/ids.h"

#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace elexirion {
namespace {

TEST(IdsTest, HexOfRequestedLengthAndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = RandomHexId(16);
    ASSERT_EQ(id.size(), 16u);
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos);
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(IdsTest, TimeOrderedIdsSortByCreationAndAreDistinct) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5000; ++i) {
    ids.push_back(TimeOrderedHexId());
    if (i % 1000 == 0) absl::SleepFor(absl::Milliseconds(2));
  }
  std::set<std::string> seen(ids.begin(), ids.end());
  EXPECT_EQ(seen.size(), ids.size());
  for (const std::string& id : ids) {
    ASSERT_EQ(id.size(), 16u);
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos);
  }
  // The millisecond prefix never goes backwards and decodes to now.
  for (size_t i = 1; i < ids.size(); ++i) EXPECT_LE(ids[i - 1].substr(0, 11), ids[i].substr(0, 11));
  const int64_t ms = std::stoll(ids.back().substr(0, 11), nullptr, 16);
  EXPECT_NEAR(static_cast<double>(ms), static_cast<double>(absl::ToUnixMillis(absl::Now())), 5000);
}

TEST(IdsTest, ForkedChildDoesNotRepeatTheParentSequence) {
  RandomHexId();  // seed in the parent
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    std::string id = RandomHexId(16);
    (void)!::write(fds[1], id.data(), id.size());
    ::_exit(0);
  }
  std::string parent = RandomHexId(16);
  char buf[16];
  ASSERT_EQ(::read(fds[0], buf, sizeof(buf)), 16);
  int status;
  ::waitpid(pid, &status, 0);
  EXPECT_NE(parent, std::string(buf, 16));
}

}  // namespace
}  // namespace elexirion
