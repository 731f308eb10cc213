// libFuzzer target for the pipeline loader (YAML parsing under budgets, the model checks,
// the optimized-YAML export round trip, and execution of whatever loads).
// Build and run: fuzz/run_fuzzer.sh SECONDS.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/pipeline_loader_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  elexirion::pipeline::fuzzing::CheckPipelineLoader(
      std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
