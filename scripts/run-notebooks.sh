#!/usr/bin/env bash
# Execute notebooks headlessly on the evcxr kernel and export them to HTML.
# Usage: scripts/run-notebooks.sh [NOTEBOOK.ipynb ...]   (default: notebooks/*.ipynb)
# Env: ANALYTICS_DATA (curated data folder, default data/curated),
#      REPORTS_DIR (default reports), VENV (default .venv).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
venv="${VENV:-$root/.venv}"
reports="${REPORTS_DIR:-$root/reports}"
# evcxr fails to dlopen its compiled cells from some folders under /root;
# /var/tmp works and survives between runs on the same machine.
cache="${EVCXR_CACHE_ROOT:-/var/tmp/sales-analytics/evcxr}"
export EVCXR_CONFIG_DIR="$root/notebooks/.evcxr"
export JUPYTER_PATH="$venv/share/jupyter"
export ANALYTICS_DATA="$(realpath -m "${ANALYTICS_DATA:-$root/data/curated}")"
export OMP_WAIT_POLICY=PASSIVE
# Notebooks that use the models link the prebuilt XGBoost library: the
# kernel's build finds it here, and its compiled cells load it from here.
export XGBOOST_LIB_DIR="$root/third_party/xgboost-cpu/xgboost/lib"
export LD_LIBRARY_PATH="$XGBOOST_LIB_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
mkdir -p "$reports" "$cache"

if [ $# -eq 0 ]; then set -- notebooks/*.ipynb; fi
build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
for nb in "$@"; do
  name="$(basename "$nb" .ipynb)"
  # A persistent scratch folder per notebook keeps evcxr's compiled crates warm.
  export EVCXR_TMPDIR="$cache/$name"
  # A notebook may ship cargo settings for its kernel build next to it
  # (NAME.cargo.toml; notebook 03 optimises its number-crunching crates).
  # evcxr writes its own .cargo/config.toml in its scratch folder, so ours
  # goes one folder up, where cargo also looks, and the scratch folder moves
  # into it.
  if [ -f "$(dirname "$nb")/$name.cargo.toml" ]; then
    mkdir -p "$cache/$name/.cargo"
    cp "$(dirname "$nb")/$name.cargo.toml" "$cache/$name/.cargo/config.toml"
    export EVCXR_TMPDIR="$cache/$name/kernel"
  fi
  mkdir -p "$EVCXR_TMPDIR"
  echo "== executing $nb (data: $ANALYTICS_DATA)" >&2
  start=$(date +%s)
  # evcxr forwards the kernel child's stderr (where a top-level `?` on an Err
  # is printed) from another thread, and it can arrive after the cell is
  # reported done. A last cell, added here and removed before export, gives
  # such late output a cell to land in, so that the check below sees it.
  # The copy sits beside the notebook: the kernel runs in the notebook's
  # folder (`:dep analytics-lib = { path = "../analytics-lib" }`).
  input="$(dirname "$nb")/.$name.runner.ipynb"
  trap 'rm -rf "$build" "$input"' EXIT
  python3 "$root/scripts/check_notebook.py" --add-sentinel "$nb" "$input"
  "$venv/bin/jupyter" nbconvert --to notebook --execute \
    --ExecutePreprocessor.kernel_name=rust \
    --ExecutePreprocessor.timeout=1800 \
    --output-dir "$build" --output "$name" "$input"
  rm -f "$input"
  python3 "$root/scripts/check_notebook.py" "$build/$name.ipynb"
  python3 "$root/scripts/check_notebook.py" --drop-sentinel "$build/$name.ipynb"
  "$venv/bin/jupyter" nbconvert --to html --output-dir "$reports" --output "$name" "$build/$name.ipynb"
  python3 "$root/scripts/offline_html.py" "$reports/$name.html"
  echo "== $nb: reports/$name.html in $(( $(date +%s) - start )) s" >&2
done
