#!/usr/bin/env bash
# Execute notebooks headlessly on the evcxr kernel and export them to HTML:
# a reader's version without the code (REPORTS_DIR/NAME.html), the full one
# (REPORTS_DIR/NAME.code.html), and an index of every report
# (REPORTS_DIR/index.html, with each run's date and data fingerprint).
# Usage: scripts/run-notebooks.sh [NOTEBOOK.ipynb ...]   (default: notebooks/*.ipynb)
# Env: ANALYTICS_DATA (curated data folder, default data/curated),
#      REPORTS_DIR (default reports), VENV (default .venv), EVCXR_CACHE_ROOT.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
. "$root/scripts/kernel-env.sh"
reports="${REPORTS_DIR:-$root/reports}"
mkdir -p "$reports/.meta"

if [ $# -eq 0 ]; then set -- notebooks/*.ipynb; fi
build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
# Notebooks run one after the other in one kernel build folder: the library
# (a path dependency, which evcxr never caches) is compiled once for all of
# them, since they import it with the same features.
export EVCXR_TMPDIR="$cache/kernel"
mkdir -p "$EVCXR_TMPDIR"
fingerprint="$(python3 "$root/scripts/report_index.py" --fingerprint "$ANALYTICS_DATA")"
for nb in "$@"; do
  name="$(basename "$nb" .ipynb)"
  echo "== executing $nb (data: $ANALYTICS_DATA)" >&2
  start=$(date +%s)
  # Our runner (nbclient, as nbconvert uses) keeps output that evcxr forwards
  # after its cell was reported done (a top-level `?` on an Err is only
  # printed to stderr, from another thread), where nbconvert drops it; its last
  # cell, removed before export, keeps it listening while such output arrives.
  # The kernel runs in the notebook's folder
  # (`:dep analytics-lib = { path = "../analytics-lib" }`).
  "$venv/bin/python" "$root/scripts/execute_notebook.py" --kernel rust \
    --timeout 1800 --startup-timeout 600 "$nb" "$build/$name.ipynb"
  python3 "$root/scripts/check_notebook.py" "$build/$name.ipynb"
  python3 "$root/scripts/check_notebook.py" --drop-sentinel "$build/$name.ipynb"
  # Exported under temporary names, then renamed: a failed export leaves the
  # previous reports whole.
  "$venv/bin/jupyter" nbconvert --to html --output-dir "$build/html" --output "$name.code" "$build/$name.ipynb"
  "$venv/bin/jupyter" nbconvert --to html --no-input --output-dir "$build/html" --output "$name" "$build/$name.ipynb"
  python3 "$root/scripts/offline_html.py" "$build/html/$name.html" "$build/html/$name.code.html"
  mv -f "$build/html/$name.code.html" "$reports/$name.code.html"
  mv -f "$build/html/$name.html" "$reports/$name.html"
  seconds=$(( $(date +%s) - start ))
  python3 "$root/scripts/report_index.py" --record "$reports" "$name" "$build/$name.ipynb" \
    "$ANALYTICS_DATA" "$fingerprint" "$seconds"
  echo "== $nb: $reports/$name.html (and $name.code.html) in $seconds s" >&2
done
python3 "$root/scripts/report_index.py" --index "$reports"
echo "== index: $reports/index.html" >&2
