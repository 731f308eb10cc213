#!/usr/bin/env bash
# make demo: a real optimization end to end. Starts elexirion-server on its embedded defaults
# (SQLite under ./var; the simulated model unless ANTHROPIC_API_KEY / GEMINI_API_KEY are set),
# optimizes the design document's code-analysis pipeline on the bundled examples with live
# progress, saves the optimized pipeline YAML, runs the pipeline with the new program, and
# stops the server with SIGTERM. Usage: scripts/demo.sh BUILD_DIR
set -euo pipefail
BUILD_DIR=${1:-build}
SERVER="$BUILD_DIR/server/app/elexirion-server"
CLI="$BUILD_DIR/client/elexirion"
EXAMPLE=examples/code_analysis
mkdir -p var
LOG=var/demo-server.log
DB=var/demo.sqlite
rm -f "$DB" "$DB-wal" "$DB-shm"

GRPC_PORT=${ELEXIRION_DEMO_GRPC_PORT:-50051}
HTTP_PORT=${ELEXIRION_DEMO_HTTP_PORT:-9090}
"$SERVER" --config deploy/config/server.yaml --grpc.listen="127.0.0.1:$GRPC_PORT" \
  --http.listen="127.0.0.1:$HTTP_PORT" --store.sqlite_path="$DB" 2>"$LOG" &
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
"$CLI" --addr "$ADDR" health
if grep -q '"simulated model"' "$LOG"; then
  echo "== no provider keys set: LLM steps run on the built-in simulated model"
fi

echo "== optimizing $EXAMPLE/pipeline.yaml with BootstrapFewShot on $(ls $EXAMPLE/examples | wc -l) examples"
"$CLI" --addr "$ADDR" optimize -f "$EXAMPLE/pipeline.yaml" --trainset "$EXAMPLE/examples" \
  --metric "$EXAMPLE/metric.yaml" --optimizer bootstrap_few_shot --program code_analysis \
  --follow

OPTIMIZED=var/code_analysis.optimized.yaml
"$CLI" --addr "$ADDR" programs get code_analysis --yaml > "$OPTIMIZED"
echo "== optimized pipeline_ex YAML (runnable without this service): $OPTIMIZED"
"$CLI" --addr "$ADDR" programs get code_analysis

echo "== ExecutePipeline with the new program"
"$CLI" --addr "$ADDR" run -f "$EXAMPLE/pipeline.yaml" --program code_analysis \
  --input "code=cursor.execute('SELECT name FROM users WHERE id=' + request.args['id'])" \
  --input analysis_type=security

echo "== jobs"
"$CLI" --addr "$ADDR" jobs list
echo "== stopping the server (SIGTERM)"
kill -TERM "$PID"
wait "$PID"
trap - EXIT
echo "== server exited cleanly"
