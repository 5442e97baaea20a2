#!/usr/bin/env bash
# Open the notebooks in JupyterLab with the Rust (evcxr) kernel, on loopback.
# Usage: scripts/lab.sh [JUPYTER LAB OPTIONS...]   (e.g. --ServerApp.port=8899)
# Env: as scripts/kernel-env.sh (VENV, ANALYTICS_DATA, EVCXR_CACHE_ROOT, EVCXR_ROOT),
#      LAB_PORT (default 8888).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
. "$root/scripts/kernel-env.sh"
if [ ! -x "$venv/bin/jupyter-lab" ]; then
  echo "JupyterLab is not installed in $venv: run 'make notebook-env' first" >&2
  exit 1
fi
if ! "$venv/bin/jupyter" kernelspec list 2>/dev/null | grep -qw rust; then
  echo "the Rust kernel is not registered in $venv: run 'make notebook-env' first" >&2
  exit 1
fi
# Each kernel gets its own build folder under here (kernels may run side by
# side), below the shared cargo configuration; crates come from evcxr's cache.
mkdir -p "$cache/lab"
export TMPDIR="$cache/lab"
echo "Notebooks: $root/notebooks  data: $ANALYTICS_DATA  (kernel: Rust; the first cell compiles the library, a few minutes cold)" >&2
# Jupyter refuses to run as root without --allow-root (CI and containers run as root).
root_flag=()
if [ "$(id -u)" = 0 ]; then root_flag=(--allow-root); fi
exec "$venv/bin/jupyter" lab --no-browser "${root_flag[@]}" \
  --ServerApp.ip=127.0.0.1 --ServerApp.port="${LAB_PORT:-8888}" \
  --ServerApp.root_dir="$root/notebooks" "$@"
