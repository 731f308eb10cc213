#!/usr/bin/env bash
# Runs every benchmark that is built and prints its figures. Usage: run-benchmarks.sh BUILD_DIR
# record_execution_bench (durable TelemetryService ingestion, ~30 s) takes extra arguments from
# RECORD_EXECUTION_BENCH_ARGS, e.g. RECORD_EXECUTION_BENCH_ARGS="--seconds 20 --streams 4", and
# runs a second time on the PostgreSQL store (--postgres) for the side-by-side figures.
set -uo pipefail
BUILD_DIR=${1:-build}
for dir in "$BUILD_DIR"/bench/*/; do
  for bin in "$dir"*; do
    if [ -f "$bin" ] && [ -x "$bin" ]; then
      args=()
      case "$(basename "$bin")" in
        record_execution_bench) read -r -a args <<< "${RECORD_EXECUTION_BENCH_ARGS:-}" ;;
      esac
      echo "== $(basename "$bin")"
      "$bin" "${args[@]}" || echo "($(basename "$bin") failed with exit code $?)"
      echo
    fi
  done
done
record_bench="$BUILD_DIR/bench/record_execution/record_execution_bench"
if [ -x "$record_bench" ]; then
  read -r -a args <<< "${RECORD_EXECUTION_BENCH_ARGS:-}"
  echo "== record_execution_bench --postgres"
  "$record_bench" --postgres "${args[@]}" || echo "(record_execution_bench --postgres failed with exit code $?)"
  echo
fi
jobs_bench="$BUILD_DIR/bench/jobs/jobs_bench"
if [ -x "$jobs_bench" ]; then
  # Replicas: 30 jobs on 1 SQLite process, then 1 and 3 processes on one PostgreSQL.
  for mode in "--server-process" "--postgres --replicas=1" "--postgres --replicas=3"; do
    echo "== jobs_bench 4 30 0 $mode"
    # shellcheck disable=SC2086
    "$jobs_bench" 4 30 0 $mode || echo "(jobs_bench $mode failed with exit code $?)"
    echo
  done
fi
