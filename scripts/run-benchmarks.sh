#!/usr/bin/env bash
# Runs every benchmark that is built and prints its figures. Usage: run-benchmarks.sh BUILD_DIR
set -uo pipefail
BUILD_DIR=${1:-build}
for bench in rpc_overhead llm_throughput execute_pipeline optimize jobs record_execution; do
  bin="$BUILD_DIR/bench/$bench/$bench"
  if [ -x "$bin" ]; then
    echo "== $bench"
    "$bin" || echo "($bench failed with exit code $?)"
    echo
  fi
done
