#!/usr/bin/env bash
# Installs every Debian bookworm package that the build, the tests and the demo need.
# Idempotent: packages already present are skipped, and apt is not touched at all when
# nothing is missing. Runs as root, or through sudo when available.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates curl
  # gRPC + Protobuf (protobuf-compiler-grpc is required by gRPC's CMake config).
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libyaml-cpp-dev nlohmann-json3-dev libcurl4-openssl-dev libssl-dev
  prometheus-cpp-dev libsqlite3-dev sqlite3 libpqxx-dev libpq-dev
  libgtest-dev libgmock-dev
  # Fuzzing the YAML loader (libFuzzer ships with clang's runtime).
  clang libclang-rt-dev
  # Test-time tools: promtool, a Python gRPC stack for interop tests, a PostgreSQL server.
  prometheus python3 python3-grpcio python3-grpc-tools python3-protobuf
  postgresql postgresql-contrib openssl procps
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-deps: need root or sudo to install: ${missing[*]}" >&2
    exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
