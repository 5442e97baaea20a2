#!/usr/bin/env bash
# serve's memory on large data (shared/spec/benchmark.md; issue 14's target:
# ≤ 1.5 GiB resident at 10 M lines): starts the release `serve` on DATA with
# the model registry MODELS, waits until it answers GET /ready, sends one
# /predict and one /segment by customer id and one dashboard request, then
# reads the process's resident memory (VmRSS: right away and after SETTLE
# seconds) and its peak (VmHWM).
#
#   bench/serve-memory.sh DATA MODELS      # or: make bench-serve-memory
#
# MODELS needs a live customer_spend and segments version (`analytics train
# --data SMALLER_DATA --models MODELS` is enough: the categories are the
# same). SERVE (default $CARGO_TARGET_DIR/release/serve), PORT (18090).
# Prints one JSON line.
set -euo pipefail
DATA=${1:?usage: bench/serve-memory.sh DATA MODELS}
MODELS=${2:?usage: bench/serve-memory.sh DATA MODELS}
TARGET=${CARGO_TARGET_DIR:-target}
SERVE=${SERVE:-$TARGET/release/serve}
PORT=${PORT:-18090}
BASE="http://127.0.0.1:$PORT"
test -x "$SERVE" || { echo "no serve binary at $SERVE (make setup)" >&2; exit 1; }
LOG=$(mktemp)
start=$(date +%s.%N)
APP_RELOAD_INTERVAL_MS=0 "$SERVE" --bind "127.0.0.1:$PORT" --models "$MODELS" --data "$DATA" 2>"$LOG" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$LOG"' EXIT
until curl -fs "$BASE/ready" >/dev/null 2>&1; do
  kill -0 $pid 2>/dev/null || { echo "serve exited:" >&2; cat "$LOG" >&2; exit 1; }
  sleep 0.5
done
ready=$(python3 -c "import time; print(round(time.time() - $start, 1))")
# A customer the data has (CUSTOMER, or the first id of the customers table
# when a python with pyarrow is at hand: .venv-bench from `make bench-compare`,
# or .venv-fakesnow from `make fakesnow-env`, which the tests install).
PY=python3
for venv in .venv-bench .venv-fakesnow; do
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import pyarrow' 2>/dev/null; then
    PY=$venv/bin/python
    break
  fi
done
id=${CUSTOMER:-$($PY - "$DATA" <<'EOF'
import sys, pyarrow.parquet as pq
t = pq.read_table(f"{sys.argv[1]}/customers.parquet", columns=["customer_id"]).slice(0, 1)
print(t.column(0)[0].as_py())
EOF
)} 2>/dev/null || id=""
codes=""
if [ -n "$id" ]; then
  for route in predict segment; do
    codes+="$route=$(curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
      -d "{\"customer_id\":\"$id\"}" "$BASE/$route") "
  done
fi
codes+="dashboard=$(curl -s -o /dev/null -w '%{http_code}' "$BASE/api/dashboard")"
# Right after the answers, and after SETTLE seconds (default 5): mimalloc
# gives freed pages back to the system with a delay.
rss_now_kb=$(awk '/^VmRSS:/ {print $2}' /proc/$pid/status)
sleep "${SETTLE:-5}"
rss_kb=$(awk '/^VmRSS:/ {print $2}' /proc/$pid/status)
hwm_kb=$(awk '/^VmHWM:/ {print $2}' /proc/$pid/status)
# Heap (anonymous) and code/mapped files (the binary's pages) apart.
anon_kb=$(awk '/^RssAnon:/ {print $2}' /proc/$pid/status)
file_kb=$(awk '/^RssFile:/ {print $2}' /proc/$pid/status)
python3 - "$DATA" "$ready" "$rss_kb" "$hwm_kb" "$codes" "$SERVE" "$anon_kb" "$file_kb" "$rss_now_kb" <<'EOF'
import json, sys
data, ready, rss, hwm, codes, serve, anon, file, rss_now = sys.argv[1:]
print(json.dumps({
    "data": data, "serve": serve, "ready_seconds": float(ready),
    "rss_at_ready_gib": round(int(rss_now) / 2**20, 3),
    "rss_gib": round(int(rss) / 2**20, 3), "peak_rss_gib": round(int(hwm) / 2**20, 3),
    "rss_anon_gib": round(int(anon) / 2**20, 3), "rss_file_gib": round(int(file) / 2**20, 3),
    "answers": dict(c.split("=") for c in codes.split()),
}))
EOF
grep -E "^serve: (data|dashboard)" "$LOG" >&2 || true
