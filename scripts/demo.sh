#!/usr/bin/env bash
# make demo: starts elexirion-server on its embedded defaults (SQLite under ./var), talks to it
# through the CLI, and stops it with SIGTERM. Usage: scripts/demo.sh BUILD_DIR
set -euo pipefail
BUILD_DIR=${1:-build}
SERVER="$BUILD_DIR/server/app/elexirion-server"
CLI="$BUILD_DIR/client/elexirion"
mkdir -p var
LOG=var/demo-server.log

GRPC_PORT=${ELEXIRION_DEMO_GRPC_PORT:-50051}
HTTP_PORT=${ELEXIRION_DEMO_HTTP_PORT:-9090}
"$SERVER" --config deploy/config/server.yaml --grpc.listen="127.0.0.1:$GRPC_PORT" \
  --http.listen="127.0.0.1:$HTTP_PORT" 2>"$LOG" &
PID=$!
cleanup() { kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }
trap cleanup EXIT

for _ in $(seq 1 100); do
  if grep -q '"msg":"serving"' "$LOG" 2>/dev/null; then break; fi
  if ! kill -0 "$PID" 2>/dev/null; then echo "server failed to start:"; cat "$LOG"; exit 1; fi
  sleep 0.1
done
ADDR="127.0.0.1:$GRPC_PORT"
echo "== elexirion-server is up on $ADDR (gRPC) and 127.0.0.1:$HTTP_PORT (HTTP); log: $LOG"
echo "== elexirion health"
"$CLI" --addr "$ADDR" health
echo "== elexirion jobs list"
"$CLI" --addr "$ADDR" jobs list
echo "== /metrics (first RPC series)"
curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" | grep '^elexirion_rpc_requests_total' | head -5
echo "== stopping the server (SIGTERM)"
kill -TERM "$PID"
wait "$PID"
trap - EXIT
echo "== server exited cleanly"
