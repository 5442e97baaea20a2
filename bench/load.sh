#!/usr/bin/env bash
# Serving benchmark (shared/spec/benchmark.md, "Serving benchmark"): the
# release `serve` on trained models over loopback, with API keys on (every
# request carries `Authorization: Bearer`), loaded with wrk for DURATION each
# (keep-alive): requests/s and p50/p99 latency for one-record POST /predict
# (by features, and by customer id: 1,000 real ids in turn) and POST /segment,
# rows/s for 1,000-record POST /predict/batch and /segment/batch, and the
# count of non-2xx answers.
#
#   bench/load.sh                 # or: make bench-api
#
# Settings (environment): BENCH_DATA (curated data; generated with LINES
# lines, seed 42, when missing), BENCH_MODELS (a model registry; both models
# are trained into it by serve/examples/bench_registry.rs when they have no
# live version), BENCH_LIVE (linear, random_forest or xgboost: the
# customer-spend kind served; default the validation winner), ROUTES (default
# "predict predict_id segment predict_batch segment_batch"), DURATION (default 20s),
# CONNECTIONS (single records, default 16), BATCH_CONNECTIONS (default 4),
# WRK_THREADS (default 1), PORT (default 18080), APP_WORKERS (serve's
# threads, default: one per core), SKIP_BUILD=1 (use the binaries already in
# $CARGO_TARGET_DIR/release). Results: a table on stdout and $OUT (JSON
# lines).
#
# Load: wrk over loopback with keep-alive, on the same 2 cores as serve (the
# spec's setting). One wrk thread: a second one would take CPU from the
# server without adding load. 16 connections for one-record requests (8 per
# server worker: enough to keep both busy while wrk waits on answers; more
# only lengthens queues and p99), 4 for 1,000-record batches (2 per worker).
# Latency is wrk's, from the request's send to its answer's end (no
# coordinated-omission correction: wrk is a closed loop). Every answer must
# be 2xx: non-2xx and socket errors are counted and reported.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=${CARGO_TARGET_DIR:-target}
LINES=${LINES:-1M}
BENCH_DATA=${BENCH_DATA:-$TARGET/bench-data/$LINES}
BENCH_MODELS=${BENCH_MODELS:-$TARGET/bench-models/$LINES}
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-16}
BATCH_CONNECTIONS=${BATCH_CONNECTIONS:-4}
WRK_THREADS=${WRK_THREADS:-1}
ROUTES=${ROUTES:-predict predict_id segment predict_batch segment_batch}
PORT=${PORT:-18080}
OUT=${OUT:-$TARGET/bench-api.jsonl}
export OMP_WAIT_POLICY=PASSIVE
for b in $ROUTES; do
  case $b in
    predict | predict_id | segment | predict_batch | segment_batch) ;;
    *) echo "bench/load.sh: ROUTES: expected names among predict predict_id segment predict_batch segment_batch; found '$b'" >&2; exit 2 ;;
  esac
done

if ! command -v wrk >/dev/null; then
  echo "bench/load.sh: wrk is not installed: install it (Debian: apt-get install -y wrk)" >&2
  exit 1
fi
for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "bench/load.sh: $tool is required" >&2; exit 1; }
done

if [ -z "${SKIP_BUILD:-}" ]; then
  # Examples bring the dev-dependencies: the test build's features, nothing
  # recompiles; the example's runnable binary is made here only.
  cargo build --profile release --workspace --bins --examples >&2
fi
if [ ! -d "$BENCH_DATA" ]; then
  echo "bench/load.sh: generating $LINES lines into $BENCH_DATA" >&2
  "$TARGET/release/analytics" generate --lines "$LINES" --seed 42 --out "$BENCH_DATA" >&2
fi
WORK=$(mktemp -d)
# BENCH_LIVE (environment) is read by bench_registry; BENCH_IDS: where it
# writes customer ids the lookups answer.
BENCH_IDS="$WORK/ids.txt" "$TARGET/release/examples/bench_registry" "$BENCH_DATA" "$BENCH_MODELS" >&2
# Keys on, as in production: a random key with the scopes the routes need.
KEY="bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
AUTH="Authorization: Bearer $KEY"

SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

APP_API_KEYS="$KEY:predict+read" APP_ACCESS_LOG="${APP_ACCESS_LOG:-$WORK/access.log}" \
APP_RELOAD_INTERVAL_MS=0 APP_MAX_BATCH=10000 "$TARGET/release/serve" \
  --bind "127.0.0.1:$PORT" --models "$BENCH_MODELS" --data "$BENCH_DATA" 2>"$WORK/serve.log" &
SERVER_PID=$!
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 1 600); do
  if curl -fsS -H "$AUTH" "$BASE/ready" >"$WORK/ready.json" 2>/dev/null; then break; fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "bench/load.sh: serve exited:" >&2; cat "$WORK/serve.log" >&2; exit 1
  fi
  sleep 0.5
done
curl -fsS -H "$AUTH" "$BASE/ready" >"$WORK/ready.json" || { echo "bench/load.sh: serve never became ready:" >&2; curl -sS -H "$AUTH" "$BASE/ready" >&2; exit 1; }
curl -fsS -H "$AUTH" "$BASE/models" >"$WORK/models.json"

# Request bodies: realistic feature values (a customer's row, looked up once
# through the batch route would need ids; plain values keep the request
# independent of the data), one record and 1,000 varied records.
python3 - "$WORK" <<'PY'
import json, sys, random
work = sys.argv[1]
models = json.load(open(f"{work}/models.json"))["models"]
names = {m["name"]: m["loaded"]["feature_names"] for m in models if m.get("loaded")}
rng = random.Random(42)
def spend(i):
    r = {}
    freq = 1 + i % 9
    monetary = 80.0 + 37.5 * (i % 50) * freq
    shares = [n for n in names["customer_spend"] if n.startswith("share_")]
    for n in names["customer_spend"]:
        r[n] = {"recency_days": (i * 7) % 365, "frequency": freq, "monetary": monetary,
                "tenure_days": 30 + (i * 11) % 700, "average_ticket": monetary / freq,
                "orders_90d": i % 3, "revenue_90d": (i % 3) * monetary / freq}.get(n, 0.0)
    if shares:
        r[shares[i % len(shares)]] = 1.0
    return r
def segment(i):
    freq = 1 + i % 9
    return {"recency_days": (i * 7) % 365, "frequency": freq, "monetary": 80.0 + 37.5 * (i % 50) * freq}
for name, f in [("predict", spend), ("segment", segment)]:
    json.dump(f(3), open(f"{work}/{name}.json", "w"))
    json.dump({"records": [f(i) for i in range(1000)]}, open(f"{work}/{name}_batch.json", "w"))
ids = [l.strip() for l in open(f"{work}/ids.txt") if l.strip()]
json.dump({"customer_id": ids[0]}, open(f"{work}/predict_id.json", "w"))
PY

cat >"$WORK/post.lua" <<'LUA'
-- POST the body in $BODY_FILE (with $IDS_FILE: {"customer_id"} of each id in
-- turn) with the bearer key; print one JSON line of results at the end.
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")
local ids_file = os.getenv("IDS_FILE")
if ids_file and ids_file ~= "" then
  local ids, i = {}, 0
  for line in io.lines(ids_file) do if line ~= "" then ids[#ids + 1] = line end end
  request = function()
    i = i % #ids + 1
    return wrk.format(nil, nil, nil, '{"customer_id":"' .. ids[i] .. '"}')
  end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "requests_per_s": %.1f, "p50_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f, "non_2xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.status, e.connect + e.read + e.write + e.timeout))
end
LUA

# Sanity: every body is answered 200 before timing.
path_of() { case $1 in predict_id) echo /predict ;; *) echo "/${1/_//}" ;; esac; }
for b in predict predict_id segment predict_batch segment_batch; do
  path=$(path_of "$b")
  code=$(curl -sS -o "$WORK/answer.json" -w '%{http_code}' -H 'content-type: application/json' -H "$AUTH" --data-binary @"$WORK/$b.json" "$BASE$path")
  [ "$code" = 200 ] || { echo "bench/load.sh: POST $path answered $code:" >&2; head -c 600 "$WORK/answer.json" >&2; exit 1; }
done

: >"$OUT"
printf '%-22s %6s %12s %12s %9s %9s %8s\n' route conns "req/s" "rows/s" "p50 ms" "p99 ms" "non-2xx"
for b in $ROUTES; do
  path=$(path_of "$b")
  rows=1; conns=$CONNECTIONS; ids=
  case $b in *_batch) rows=1000; conns=$BATCH_CONNECTIONS ;; predict_id) ids="$WORK/ids.txt" ;; esac
  line=$(BODY_FILE="$WORK/$b.json" IDS_FILE="$ids" BENCH_KEY="$KEY" wrk -t "$WRK_THREADS" -c "$conns" -d "$DURATION" --timeout 10s \
    -s "$WORK/post.lua" "$BASE$path" | grep '^{"requests"')
  python3 - "$path" "$rows" "$conns" "$line" "$OUT" "$(cut -d' ' -f1-3 /proc/loadavg)" "$ids" <<'PY'
import json, sys
path, rows, conns, line, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
r = json.loads(line)
r.update({"route": path + (" (by id)" if sys.argv[7] else ""), "load": sys.argv[6], "rows_per_request": rows, "connections": conns,
          "rows_per_s": r["requests_per_s"] * rows,
          "non_2xx_total": r["non_2xx"] + r["socket_errors"]})
open(out, "a").write(json.dumps(r) + "\n")
print(f'{r["route"]:<22} {conns:>6} {r["requests_per_s"]:>12,.0f} {r["rows_per_s"]:>12,.0f} '
      f'{r["p50_ms"]:>9.3f} {r["p99_ms"]:>9.3f} {r["non_2xx_total"]:>8}')
PY
done
python3 - "$WORK/ready.json" "$BENCH_DATA" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("models: " + ", ".join(f'{m["name"]} {m["version"]} ({m["kind"]})' for m in r["models"])
      + f"; data: {sys.argv[2]}")
PY
echo "results: $OUT" >&2
