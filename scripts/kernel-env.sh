# Sourced by scripts/run-notebooks.sh and scripts/lab.sh: the environment the
# evcxr kernel runs in, the same for headless runs and for JupyterLab.
# Needs: $root (the repository). Env: VENV (default .venv), ANALYTICS_DATA
# (default data/curated), EVCXR_CACHE_ROOT (default /var/tmp/sales-analytics/evcxr).
venv="${VENV:-$root/.venv}"
case "$venv" in /*) ;; *) venv="$root/$venv" ;; esac
# evcxr fails to dlopen its compiled cells from some folders under /root;
# /var/tmp works and survives between runs on the same machine.
cache="${EVCXR_CACHE_ROOT:-/var/tmp/sales-analytics/evcxr}"
mkdir -p "$cache/.cargo"
# One cargo configuration above every kernel build folder (cargo looks in
# parent folders): all notebooks compile their dependencies alike, so evcxr's
# compilation cache serves one notebook's crates to the others.
cp "$root/notebooks/kernel.cargo.toml" "$cache/.cargo/config.toml"
# The kernel builds with the workspace's patched bhtsne (seeded t-SNE draws,
# vendor/bhtsne/PATCHED.md), as the CLI and serve do: a [patch] in a cargo
# configuration takes an absolute path.
printf '\n[patch.crates-io]\nbhtsne = { path = "%s" }\n' "$root/vendor/bhtsne" >> "$cache/.cargo/config.toml"
export EVCXR_CONFIG_DIR="$root/notebooks/.evcxr"
export JUPYTER_PATH="$venv/share/jupyter"
export ANALYTICS_DATA="$(realpath -m "${ANALYTICS_DATA:-$root/data/curated}")"
export OMP_WAIT_POLICY=PASSIVE
# `make test` builds the workspace through clippy-driver with warnings as
# errors (RUSTC_WORKSPACE_WRAPPER, CLIPPY_ARGS); the kernel's cargo must not
# inherit that: the crate evcxr generates for each cell would be linted and
# refused, with no message evcxr can show.
unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
# The notebooks link the prebuilt XGBoost library: the kernel's build finds
# it here, and its compiled cells load it from here.
export XGBOOST_LIB_DIR="$root/third_party/xgboost-cpu/xgboost/lib"
export LD_LIBRARY_PATH="$XGBOOST_LIB_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# evcxr_jupyter installed by `make notebook-env` (EVCXR_ROOT), if not on PATH.
if [ -n "${EVCXR_ROOT:-}" ] && [ -x "$EVCXR_ROOT/bin/evcxr_jupyter" ]; then
  export PATH="$EVCXR_ROOT/bin:$PATH"
fi
