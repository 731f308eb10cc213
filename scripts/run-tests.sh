#!/usr/bin/env bash
# Runs every test through ctest. Test-only services (PostgreSQL) are started by the tests'
# own fixtures. Usage: scripts/run-tests.sh BUILD_DIR [ctest args...]
set -euo pipefail
BUILD_DIR=${1:-build}
shift || true
export TMPDIR=${TMPDIR:-/tmp}
ctest --test-dir "$BUILD_DIR" --output-on-failure --timeout 600 -j 2 "$@"
