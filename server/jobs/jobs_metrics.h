// Facade over the job metrics. Label values are bounded: optimizer names come from the
// registry, outcomes from EndReason, and program names are capped (beyond the cap: "other").
#pragma once

#include <cstdint>
#include <string>

namespace elexirion::jobs {

void InitJobsMetrics();
void SetJobCounts(int64_t queued, int64_t running);
void RecordJobFinished(const std::string& optimizer, const std::string& outcome, double seconds);
void RecordTrial(const std::string& optimizer);
void SetProgramScore(const std::string& program, double score);

}  // namespace elexirion::jobs
