#!/usr/bin/env bash
# The AWS Lambda package of the prediction API (custom runtime provided.al2023):
#
#   bootstrap                      serve-lambda, stripped, rpath $ORIGIN/lib
#   lib/libxgboost.so.3            the prebuilt XGBoost (rpath $ORIGIN)
#   lib/libgomp-*.so.1.0.0         its OpenMP runtime
#   models/                        the model registry, when MODELS is given
#
# Usage: scripts/package-lambda.sh [OUT_DIR]   (default: $CARGO_TARGET_DIR/lambda or target/lambda)
# Env:
#   BIN     the built serve-lambda (default: <target>/release/serve-lambda)
#   MODELS  a model registry folder to put in the package as models/ (serve-lambda
#           reads $LAMBDA_TASK_ROOT/models by default); without it, ship the registry
#           as a layer (/opt/models) or point APP_MODELS elsewhere
# Prints the zip's size and the unzipped size (Lambda: 50 MB zipped for a direct
# upload, 250 MB unzipped including layers).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
out="${1:-$target/lambda}"
bin="${BIN:-$target/release/serve-lambda}"
xgb_dir=third_party/xgboost-cpu
[ -x "$bin" ] || { echo "package-lambda: expected the built binary at $bin, found nothing (cargo build --profile release -p serve-lambda)" >&2; exit 1; }
[ -f "$xgb_dir/xgboost/lib/libxgboost.so" ] || { echo "package-lambda: expected $xgb_dir/xgboost/lib/libxgboost.so (scripts/fetch-xgboost.sh)" >&2; exit 1; }
for tool in patchelf zip strip; do
  command -v "$tool" >/dev/null || { echo "package-lambda: $tool not found (scripts/prereqs.sh lambda)" >&2; exit 1; }
done

pkg="$out/package"
rm -rf "$pkg" "$out/serve-lambda.zip"
mkdir -p "$pkg/lib"
cp "$bin" "$pkg/bootstrap"
cp "$xgb_dir/xgboost/lib/libxgboost.so" "$pkg/lib/libxgboost.so.3"
cp "$xgb_dir"/xgboost_cpu.libs/libgomp-*.so* "$pkg/lib/"
strip "$pkg/bootstrap"
# Relocatable, as the Dockerfile's build stage does: the build's rpath names
# this checkout's third_party/ folder; the package finds its libraries beside it.
patchelf --set-rpath '$ORIGIN/lib' "$pkg/bootstrap"
patchelf --set-rpath '$ORIGIN' "$pkg/lib/libxgboost.so.3"
chmod 755 "$pkg/bootstrap"
if [ -n "${MODELS:-}" ]; then
  [ -f "$MODELS/customer_spend/live.json" ] || { echo "package-lambda: expected a model registry in MODELS=$MODELS (customer_spend/live.json), found none" >&2; exit 1; }
  cp -rL "$MODELS" "$pkg/models"
fi
# Check what the loader resolves: libxgboost from the package, nothing missing.
# ldd's output is read once, then searched: `ldd | grep -q` under pipefail
# fails when grep stops at its match before ldd has written everything
# (ldd dies of SIGPIPE), which made this check fail at random.
deps="$(ldd "$pkg/bootstrap")"
if grep -q 'not found' <<<"$deps"; then
  echo "$deps" >&2; echo "package-lambda: a library is missing" >&2; exit 1
fi
grep -qF "$(cd "$pkg" && pwd)/lib/libxgboost.so.3" <<<"$deps" || {
  echo "$deps" >&2; echo "package-lambda: libxgboost is not found through the package's rpath" >&2; exit 1; }
(cd "$pkg" && zip -q -r -X ../serve-lambda.zip .)
glibc=$(objdump -T "$pkg/bootstrap" "$pkg"/lib/*.so* 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
zipped=$(stat -c %s "$out/serve-lambda.zip")
unzipped=$(du -sb "$pkg" | cut -f1)
echo "package-lambda: $out/serve-lambda.zip"
printf 'package-lambda: zipped %d bytes (%.1f MiB), unzipped %d bytes (%.1f MiB), newest glibc symbol %s\n' \
  "$zipped" "$(awk -v b="$zipped" 'BEGIN { print b / 1048576 }')" \
  "$unzipped" "$(awk -v b="$unzipped" 'BEGIN { print b / 1048576 }')" "$glibc"
