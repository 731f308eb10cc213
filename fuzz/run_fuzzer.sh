#!/usr/bin/env bash
# Builds pipeline_loader_fuzzer with clang (libFuzzer + AddressSanitizer) in its own build
# directory and runs it for a bounded time over the committed seed corpus.
#
#   fuzz/run_fuzzer.sh SECONDS
#
# New interesting inputs go to $BUILD/fuzz-work/corpus (the committed corpus is only read);
# crashes, leaks and timeouts are written to $BUILD/fuzz-work/artifacts/ and the script exits
# non-zero. Environment: FUZZ_BUILD_DIR (default <repo>/build-fuzz), FUZZ_JOBS (default 2).
set -euo pipefail

SECONDS_TO_RUN="${1:?usage: fuzz/run_fuzzer.sh SECONDS}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
JOBS="${FUZZ_JOBS:-2}"
SANITIZE="-fsanitize=fuzzer-no-link,address -fno-omit-frame-pointer"

configure_args=(
  -G Ninja
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
  -DCMAKE_BUILD_TYPE=RelWithDebInfo
  "-DCMAKE_C_FLAGS=$SANITIZE" "-DCMAKE_CXX_FLAGS=$SANITIZE"
  -DELEXIRION_BUILD_FUZZ=ON -DELEXIRION_BUILD_TESTS=OFF -DELEXIRION_BUILD_BENCH=OFF
)

if grep -Eq '^[^#]*add_subdirectory\(fuzz\)' "$ROOT/CMakeLists.txt"; then
  cmake -S "$ROOT" -B "$BUILD" "${configure_args[@]}" >"$BUILD.configure.log" 2>&1 ||
    { cat "$BUILD.configure.log"; exit 1; }
  FUZZER="$BUILD/fuzz/pipeline_loader_fuzzer"
else
  # The top-level CMakeLists.txt does not add fuzz/ yet: wrap it in a tiny project that does.
  WRAPPER="$BUILD/wrapper-src"
  mkdir -p "$WRAPPER"
  cat >"$WRAPPER/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.22)
project(elexirion_fuzz_wrapper LANGUAGES C CXX)
add_subdirectory("$ROOT" elexirion)
add_subdirectory("$ROOT/fuzz" fuzz)
CMAKE
  cmake -S "$WRAPPER" -B "$BUILD" "${configure_args[@]}" >"$BUILD.configure.log" 2>&1 ||
    { cat "$BUILD.configure.log"; exit 1; }
  FUZZER="$BUILD/fuzz/pipeline_loader_fuzzer"
fi
cmake --build "$BUILD" -j"$JOBS" --target pipeline_loader_fuzzer

WORK="$BUILD/fuzz-work"
mkdir -p "$WORK/corpus" "$WORK/artifacts"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}"
exec "$FUZZER" \
  -max_total_time="$SECONDS_TO_RUN" \
  -timeout=5 \
  -rss_limit_mb=2048 \
  -max_len=32768 \
  -print_final_stats=1 \
  -dict="$ROOT/fuzz/pipeline_loader.dict" \
  -artifact_prefix="$WORK/artifacts/" \
  "$WORK/corpus" "$ROOT/fuzz/corpus/pipeline_loader"
