#include "server/learning/schedule_slots.h"

#include <cstdint>

#include "absl/strings/str_cat.h"

namespace elexirion::learning {
namespace {

absl::Time OccurrenceOn(absl::CivilDay day, absl::TimeZone zone, int hour, int minute) {
  const absl::CivilSecond local(day.year(), day.month(), day.day(), hour, minute, 0);
  // `pre` is the first of two repeated times, and for a skipped time the instant the clock
  // reading would have had without the transition: both run the slot exactly once.
  return zone.At(local).pre;
}

ScheduleSlot SlotOn(absl::CivilDay day, absl::TimeZone zone, int hour, int minute) {
  return ScheduleSlot{absl::FormatCivilTime(day), OccurrenceOn(day, zone, hour, minute)};
}

}  // namespace

std::optional<ScheduleSlot> DailySlot(absl::Time now, absl::TimeZone zone, int hour, int minute) {
  const absl::CivilDay today = absl::ToCivilDay(now, zone);
  if (OccurrenceOn(today, zone, hour, minute) > now) return std::nullopt;
  return SlotOn(today, zone, hour, minute);
}

std::optional<ScheduleSlot> WeeklySlot(absl::Time now, absl::TimeZone zone, absl::Weekday day,
                                       int hour, int minute, absl::Duration catch_up) {
  absl::CivilDay candidate = absl::ToCivilDay(now, zone);
  while (absl::GetWeekday(candidate) != day) --candidate;
  if (OccurrenceOn(candidate, zone, hour, minute) > now) candidate -= 7;
  ScheduleSlot slot = SlotOn(candidate, zone, hour, minute);
  if (now - slot.start >= catch_up) return std::nullopt;
  return slot;
}

ScheduleSlot IntervalSlot(absl::Time now, absl::Duration interval) {
  absl::Duration remainder;
  int64_t index = absl::IDivDuration(now - absl::UnixEpoch(), interval, &remainder);
  // IDivDuration truncates toward zero; slots before the epoch would otherwise be twice as
  // long around zero.
  if (remainder < absl::ZeroDuration()) --index;
  return ScheduleSlot{absl::StrCat(index), absl::UnixEpoch() + interval * index};
}

}  // namespace elexirion::learning
