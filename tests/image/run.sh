#!/usr/bin/env bash
# Runs the image built by scripts/image.sh and checks it (called by
# `scripts/image.sh test`, inside a private network namespace):
#   tests/image/run.sh IMAGE BIN_DIR
# Any failed check exits non-zero with what was expected and what was found.
set -euo pipefail
image="$1"; bin_dir="$2"
IMAGE_CACHE="${IMAGE_CACHE:-$HOME/.cache/sales-analytics/image}"
export BUILDAH_ISOLATION=chroot
bh() { buildah --root "$IMAGE_CACHE/storage" --runroot "$IMAGE_CACHE/run" --storage-driver vfs "$@"; }
fail() { echo "image test: FAILED: $*" >&2; exit 1; }
ok() { echo "image test: ok: $*" >&2; }

ip link set lo up
# Nothing may listen on the image's port in this namespace yet.
! curl -s -o /dev/null http://127.0.0.1:8080/health || fail "something already answers on 127.0.0.1:8080"

tmp=$(mktemp -d)
ctr=""; serve_pid=""; run_pid=""
cleanup() {
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null || true
  [ -n "$run_pid" ] && { kill "$run_pid" 2>/dev/null; wait "$run_pid" 2>/dev/null; } || true
  [ -n "$ctr" ] && bh rm "$ctr" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# A registry and a data folder to mount (20k lines: a few seconds).
"$bin_dir/analytics" generate --lines 20k --seed 42 --out "$tmp/data" >/dev/null 2>"$tmp/generate.log" \
  || { cat "$tmp/generate.log" >&2; fail "analytics generate"; }
OMP_WAIT_POLICY=PASSIVE "$bin_dir/analytics" train --data "$tmp/data" --models "$tmp/models" >/dev/null 2>"$tmp/train.log" \
  || { cat "$tmp/train.log" >&2; fail "analytics train"; }
chmod 755 "$tmp"; chmod -R a+rX "$tmp/data" "$tmp/models"

key=$(od -An -N16 -tx1 /dev/urandom | tr -d " \n")
ctr=$(bh from --pull=never --name "image-test-$$" "$image")
bh config --env APP_API_KEYS="$key" "$ctr"
run() { bh run -v "$tmp/models:/app/models:ro" -v "$tmp/data:/app/data:ro" "$ctr" -- "$@"; }

# The user the image runs as.
uid=$(run id -u)
[ "$uid" = 10001 ] || fail "the image's user: expected uid 10001, found $uid"
ok "runs as uid $uid ($(run id -un))"

# Every library resolves, libxgboost from /app/lib through the rpath.
for f in /app/serve /app/analytics /app/lib/libxgboost.so.3; do
  out=$(run ldd "$f") || fail "ldd $f: $out"
  ! grep -q 'not found' <<<"$out" || fail "ldd $f: a library is not found: $(grep 'not found' <<<"$out")"
done
grep -q 'libxgboost.so.3 => /app/lib/libxgboost.so.3' <<<"$(run ldd /app/serve)" \
  || fail "serve should load /app/lib/libxgboost.so.3, found: $(run ldd /app/serve | grep xgboost)"
ok "ldd: every library found; libxgboost from /app/lib"
run /app/analytics --version >/dev/null || fail "/app/analytics --version"

# The HEALTHCHECK command, as the image records it (docker format).
config=$(bh inspect --type image "$image" | jq -c '.Docker.config')
hc=$(jq -c '.Healthcheck.Test' <<<"$config")
[ "$(jq -r '.[0]' <<<"$hc")" = CMD-SHELL ] || fail "HEALTHCHECK: expected a CMD-SHELL test, found $hc"
hc_cmd=$(jq -r '.[1]' <<<"$hc")
! run /bin/sh -c "$hc_cmd" >/dev/null 2>&1 || fail "the HEALTHCHECK succeeded before serve started"

# serve with the image's own configuration (APP_BIND 0.0.0.0:8080, /app/models, /app/data).
entry=$(jq -c '.Entrypoint' <<<"$config")
[ "$entry" = '["/app/serve"]' ] || fail "entrypoint: expected [\"/app/serve\"], found $entry"
run /app/serve > "$tmp/serve.log" 2>&1 &
run_pid=$!
for _ in $(seq 1 120); do
  curl -fs -o /dev/null http://127.0.0.1:8080/health && break
  kill -0 "$run_pid" 2>/dev/null || { cat "$tmp/serve.log" >&2; fail "serve exited before answering /health"; }
  sleep 0.5
done
curl -fs -o /dev/null http://127.0.0.1:8080/health || { cat "$tmp/serve.log" >&2; fail "no /health answer within 60 s"; }

# The serve process itself: its uid, seen from the host.
serve_pid=$(ps -e -o pid=,args= | awk '$2 == "/app/serve" {print $1}' | while read -r p; do
  # only a descendant of our buildah run
  q=$p; while [ "$q" -gt 1 ]; do [ "$q" = "$run_pid" ] && { echo "$p"; break; }; q=$(ps -o ppid= -p "$q" | tr -d ' '); done
done | head -1)
[ -n "$serve_pid" ] || fail "the serve process under buildah run $run_pid not found"
puid=$(ps -o uid= -p "$serve_pid" | tr -d ' ')
[ "$puid" = 10001 ] || fail "serve runs as uid $puid, expected 10001"
ok "/health answers; serve (pid $serve_pid) runs as uid $puid"

auth=(-H "Authorization: Bearer $key")
code=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/ready)
[ "$code" = 401 ] || fail "/ready without a key: expected 401, found $code"
for _ in $(seq 1 60); do
  code=$(curl -s -o "$tmp/ready.json" -w '%{http_code}' "${auth[@]}" http://127.0.0.1:8080/ready)
  [ "$code" = 200 ] && break; sleep 0.5
done
[ "$code" = 200 ] || fail "/ready: expected 200, found $code: $(cat "$tmp/ready.json")"
ok "/ready 200 with the key, 401 without: $(head -c 300 "$tmp/ready.json")"

# /predict for a customer of the mounted data (the id from the data's export).
curl -fsS "${auth[@]}" 'http://127.0.0.1:8080/api/dashboard/export.csv?table=customers' -o "$tmp/customers.csv" \
  || fail "/api/dashboard/export.csv?table=customers"
col=$(head -1 "$tmp/customers.csv" | tr ',' '\n' | grep -nx 'customer_id' | cut -d: -f1)
[ -n "$col" ] || fail "no customer_id column in the customers export: $(head -1 "$tmp/customers.csv")"
id=$(sed -n 2p "$tmp/customers.csv" | cut -d, -f"$col")
[ -n "$id" ] || fail "the customers export has no row"
code=$(curl -s -o "$tmp/predict.json" -w '%{http_code}' "${auth[@]}" -H 'Content-Type: application/json' \
  -d "{\"customer_id\": \"$id\"}" http://127.0.0.1:8080/predict)
[ "$code" = 200 ] || fail "/predict {customer_id: $id}: expected 200, found $code: $(cat "$tmp/predict.json")"
jq -e '(.predicted_spend_90d | type == "number" and . >= 0)
       and (.interval_80.low <= .interval_80.high)
       and (.interval_95.low <= .interval_80.low) and (.interval_80.high <= .interval_95.high)
       and (.model | type == "string") and .version == "v0001"
       and (.contributions | length > 0)' "$tmp/predict.json" >/dev/null \
  || fail "/predict: expected a spend >= 0, nested 80/95 % intervals, the model, version v0001 and contributions, found $(cat "$tmp/predict.json")"
ok "/predict for $id: $(jq -c '{predicted_spend_90d, interval_80, model, version}' "$tmp/predict.json")"

# The HEALTHCHECK command succeeds while serve runs ...
run /bin/sh -c "$hc_cmd" >/dev/null || fail "the HEALTHCHECK command failed while serve runs: $hc_cmd"
ok "HEALTHCHECK ($hc_cmd) succeeds"
# ... and fails once it stopped.
kill "$serve_pid"; wait "$run_pid" 2>/dev/null || true; serve_pid=""; run_pid=""
! run /bin/sh -c "$hc_cmd" >/dev/null 2>&1 || fail "the HEALTHCHECK still succeeds after serve stopped"
ok "HEALTHCHECK fails once serve stopped"

echo "image test: all checks passed; $image is $(bh images --format '{{.Size}}' "$image" | head -1)" >&2
