#!/usr/bin/env bash
# Fetch the prebuilt XGBoost shared library (CPU build) from the PyPI wheel
# `xgboost-cpu` into third_party/xgboost-cpu, keeping the wheel's layout
# (libxgboost.so finds its bundled libgomp through $ORIGIN/../../xgboost_cpu.libs).
#
# The Rust crate `xgb` links this library: .cargo/config.toml points
# XGBOOST_LIB_DIR at third_party/xgboost-cpu/xgboost/lib, and analytics-lib's
# build.rs sets the rpath when the `models` feature is on.
#
# Idempotent: does nothing when the library is already in place.
# Needs: python3 with pip (the wheel comes from PyPI), network to PyPI.
# Building the `xgb` crate also needs libclang (apt-get install libclang-dev).
set -euo pipefail

VERSION="${XGBOOST_CPU_VERSION:-3.4.1}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/third_party/xgboost-cpu"
LIB="$DEST/xgboost/lib"

if [[ -f "$LIB/libxgboost.so" && -e "$LIB/libxgboost.so.3" ]]; then
    echo "xgboost-cpu $VERSION: already in $DEST" >&2
    exit 0
fi

PY="${PYTHON:-python3}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# xgboost >= 3.3 wheels declare Python >= 3.12: without --python-version and
# --platform, pip on an older Python silently picks an old release.
"$PY" -m pip download "xgboost-cpu==$VERSION" --no-deps --only-binary :all: \
    --python-version 3.12 --platform manylinux_2_28_x86_64 -d "$TMP/wheel" >&2

shopt -s nullglob
wheels=("$TMP"/wheel/xgboost_cpu-"$VERSION"-*.whl)
if [[ ${#wheels[@]} -ne 1 ]]; then
    echo "fetch-xgboost: expected one xgboost_cpu-$VERSION wheel, found ${#wheels[@]}" >&2
    exit 1
fi

# Unpack next to the destination, then move into place (no half-written tree).
rm -rf "$DEST.tmp"
mkdir -p "$(dirname "$DEST")"
"$PY" -m zipfile -e "${wheels[0]}" "$DEST.tmp"
ln -sf libxgboost.so "$DEST.tmp/xgboost/lib/libxgboost.so.3"   # its SONAME
rm -rf "$DEST"
mv "$DEST.tmp" "$DEST"
echo "xgboost-cpu $VERSION: installed in $DEST" >&2
