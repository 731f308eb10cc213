#!/usr/bin/env bash
# Runs every benchmark that is built and prints its figures. Usage: run-benchmarks.sh BUILD_DIR
set -uo pipefail
BUILD_DIR=${1:-build}
for dir in "$BUILD_DIR"/bench/*/; do
  for bin in "$dir"*; do
    if [ -f "$bin" ] && [ -x "$bin" ]; then
      echo "== $(basename "$bin")"
      "$bin" || echo "($(basename "$bin") failed with exit code $?)"
      echo
    fi
  done
done
