// Which slot of a schedule is current at a given time. A slot is one run of a schedule: its
// key names it in the store (TryClaimScheduleSlot), so every replica and every restart that
// asks at any time within the same slot gets the same key.
#pragma once

#include <optional>
#include <string>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"

namespace elexirion::learning {

struct ScheduleSlot {
  std::string key;
  // When the slot began (the occurrence of the schedule's time of day).
  absl::Time start;
};

// Today's (local day in `zone`) occurrence of hour:minute, once `now` has reached it; nullopt
// before it. Key: the local date, "YYYY-MM-DD". Yesterday's slot is deliberately not caught up
// after midnight: run at 01:59, it would be followed by today's a minute later on the same
// data. A time of day skipped by a DST jump runs as if the jump had not happened yet (02:30 on
// a spring-forward night is 03:30 new time); a repeated one runs at its first occurrence.
std::optional<ScheduleSlot> DailySlot(absl::Time now, absl::TimeZone zone, int hour, int minute);

// The most recent occurrence of `day` at hour:minute in `zone`, while `now` is less than
// `catch_up` after it (a replica restarted a few hours late still runs the week's slot, a
// server deployed mid-week does not start with a full run); nullopt otherwise. Key: the
// occurrence's local date, "YYYY-MM-DD".
std::optional<ScheduleSlot> WeeklySlot(absl::Time now, absl::TimeZone zone, absl::Weekday day,
                                       int hour, int minute, absl::Duration catch_up);

// Fixed intervals counted from the Unix epoch (independent of time zones, so replicas in
// different zones agree). Key: the interval's index in decimal. `interval` must be positive.
ScheduleSlot IntervalSlot(absl::Time now, absl::Duration interval);

}  // namespace elexirion::learning
