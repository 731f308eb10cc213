// Slot arithmetic: which run of a schedule is current at a given instant, in UTC and in a
// zone with daylight saving time.
#include "server/learning/schedule_slots.h"

#include "gtest/gtest.h"

namespace elexirion::learning {
namespace {

absl::Time Utc(int y, int mo, int d, int h, int mi, int s = 0) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::UTCTimeZone());
}

absl::TimeZone NewYork() {
  absl::TimeZone zone;
  EXPECT_TRUE(absl::LoadTimeZone("America/New_York", &zone));
  return zone;
}

TEST(DailySlotTest, DueFromTheTimeOfDayUntilTheEndOfTheDay) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  EXPECT_FALSE(DailySlot(Utc(2026, 11, 26, 1, 59, 59), utc, 2, 0).has_value());
  auto slot = DailySlot(Utc(2026, 11, 26, 2, 0), utc, 2, 0);
  ASSERT_TRUE(slot.has_value());
  EXPECT_EQ(slot->key, "2026-11-26");
  EXPECT_EQ(slot->start, Utc(2026, 11, 26, 2, 0));
  slot = DailySlot(Utc(2026, 11, 26, 23, 59, 59), utc, 2, 0);
  ASSERT_TRUE(slot.has_value());
  EXPECT_EQ(slot->key, "2026-11-26");
  // After midnight yesterday's slot is over and today's has not begun.
  EXPECT_FALSE(DailySlot(Utc(2026, 11, 27, 0, 30), utc, 2, 0).has_value());
}

TEST(DailySlotTest, FollowsTheLocalDayOfTheZone) {
  const absl::TimeZone ny = NewYork();
  // 02:00 EST is 07:00 UTC.
  EXPECT_FALSE(DailySlot(Utc(2026, 11, 26, 6, 59), ny, 2, 0).has_value());
  auto slot = DailySlot(Utc(2026, 11, 26, 7, 0), ny, 2, 0);
  ASSERT_TRUE(slot.has_value());
  EXPECT_EQ(slot->key, "2026-11-26");
  // 01:00 UTC on the 27th is still the evening of the 26th in New York.
  slot = DailySlot(Utc(2026, 11, 27, 1, 0), ny, 2, 0);
  ASSERT_TRUE(slot.has_value());
  EXPECT_EQ(slot->key, "2026-11-26");
  // 02:00 EDT is 06:00 UTC in summer.
  slot = DailySlot(Utc(2026, 7, 1, 6, 0), ny, 2, 0);
  ASSERT_TRUE(slot.has_value());
  EXPECT_EQ(slot->key, "2026-07-01");
}

TEST(DailySlotTest, DaylightSavingTransitionsRunOnce) {
  const absl::TimeZone ny = NewYork();
  // 2026-03-08: 02:00-03:00 does not exist; 02:30 runs at 03:30 EDT = 07:30 UTC.
  EXPECT_FALSE(DailySlot(Utc(2026, 3, 8, 7, 29), ny, 2, 30).has_value());
  auto slot = DailySlot(Utc(2026, 3, 8, 7, 30), ny, 2, 30);
  ASSERT_TRUE(slot.has_value());
  EXPECT_EQ(slot->key, "2026-03-08");
  // 2026-11-01: 01:30 happens twice; the slot starts at the first (EDT, 05:30 UTC) and the
  // second is the same slot.
  slot = DailySlot(Utc(2026, 11, 1, 5, 30), ny, 1, 30);
  ASSERT_TRUE(slot.has_value());
  EXPECT_EQ(slot->start, Utc(2026, 11, 1, 5, 30));
  auto again = DailySlot(Utc(2026, 11, 1, 6, 30), ny, 1, 30);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->key, slot->key);
}

TEST(WeeklySlotTest, OnTheConfiguredWeekdayWithinTheCatchUpWindow) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  const absl::Duration catch_up = absl::Hours(24);
  // 2026-11-22 is a Sunday.
  EXPECT_FALSE(WeeklySlot(Utc(2026, 11, 21, 12, 0), utc, absl::Weekday::sunday, 3, 0, catch_up));
  EXPECT_FALSE(WeeklySlot(Utc(2026, 11, 22, 2, 59), utc, absl::Weekday::sunday, 3, 0, catch_up));
  auto slot = WeeklySlot(Utc(2026, 11, 22, 3, 0), utc, absl::Weekday::sunday, 3, 0, catch_up);
  ASSERT_TRUE(slot.has_value());
  EXPECT_EQ(slot->key, "2026-11-22");
  slot = WeeklySlot(Utc(2026, 11, 23, 2, 59), utc, absl::Weekday::sunday, 3, 0, catch_up);
  ASSERT_TRUE(slot.has_value());
  EXPECT_EQ(slot->key, "2026-11-22");
  EXPECT_FALSE(WeeklySlot(Utc(2026, 11, 23, 3, 0), utc, absl::Weekday::sunday, 3, 0, catch_up));
  // A longer catch-up reaches back to the most recent occurrence.
  slot =
      WeeklySlot(Utc(2026, 11, 28, 23, 0), utc, absl::Weekday::sunday, 3, 0, absl::Hours(24 * 7));
  ASSERT_TRUE(slot.has_value());
  EXPECT_EQ(slot->key, "2026-11-22");
  slot = WeeklySlot(Utc(2026, 11, 25, 23, 59), utc, absl::Weekday::wednesday, 23, 59, catch_up);
  ASSERT_TRUE(slot.has_value());
  EXPECT_EQ(slot->key, "2026-11-25");
}

TEST(IntervalSlotTest, FixedIntervalsFromTheEpoch) {
  const absl::Duration ten = absl::Minutes(10);
  const auto a = IntervalSlot(Utc(2026, 11, 26, 0, 0), ten);
  const auto b = IntervalSlot(Utc(2026, 11, 26, 0, 9, 59), ten);
  const auto c = IntervalSlot(Utc(2026, 11, 26, 0, 10), ten);
  EXPECT_EQ(a.key, b.key);
  EXPECT_NE(b.key, c.key);
  EXPECT_EQ(a.start, Utc(2026, 11, 26, 0, 0));
  EXPECT_EQ(c.start, Utc(2026, 11, 26, 0, 10));
  // Before the epoch slots still have the full length.
  EXPECT_EQ(IntervalSlot(absl::UnixEpoch() - absl::Seconds(1), ten).start, absl::UnixEpoch() - ten);
}

}  // namespace
}  // namespace elexirion::learning
