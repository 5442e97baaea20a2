#!/usr/bin/env bash
# Measure `.ci/run` as a new machine sees it: a fresh clone of HEAD with every
# cache pointed at an empty folder (cargo's target folder, registry and
# install root of the evcxr kernel, evcxr's compilation cache and scratch
# folders, pip's and npm's caches, the container image's base; no venvs,
# no node_modules, no third_party). System packages are whatever the machine has (apt-get
# installs them in about a minute when missing).
#
# Usage: bench/cold-setup.sh [WORK_DIR]   (default: a new folder under /var/tmp)
# Prints each phase's wall time (scripts/timed.sh) and the total; the log is
# WORK_DIR/ci.log. Needs ~40 GB of free disk. Took 43 min 20 s on 2 cores
# (2026-12-04; system packages already installed).
# KEEP=1 keeps WORK_DIR (its target folder is of no use elsewhere: cargo
# fingerprints it against WORK_DIR's own CARGO_HOME); otherwise it is
# removed at the end.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$(mktemp -d /var/tmp/cold-setup.XXXXXX)}"
mkdir -p "$work"
git clone -q "$root" "$work/repo"
export CARGO_HOME="$work/cargo-home"           # empty registry: every crate downloaded
export CARGO_TARGET_DIR="$work/target"
export EVCXR_ROOT="$work/evcxr-root"           # no evcxr_jupyter: cargo install runs
export EVCXR_CACHE_ROOT="$work/evcxr-scratch"  # the kernels' build folders
export XDG_CACHE_HOME="$work/xdg-cache"        # evcxr's compilation cache, pip's cache
export PIP_CACHE_DIR="$work/pip-cache"
export npm_config_cache="$work/npm-cache"
export IMAGE_CACHE="$work/image-cache"         # the image's debootstrap base, built again
export PHASE_LOG="$work/phases.tsv"
# rustup's proxies still find the toolchain (RUSTUP_HOME is unchanged).
export RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"
export PATH="$HOME/.cargo/bin:$PATH"
echo "cold set-up in $work (log: $work/ci.log)" >&2
start=$(date +%s)
set +e
(cd "$work/repo" && CI=true bash .ci/run) > "$work/ci.log" 2>&1
rc=$?
set -e
total=$(( $(date +%s) - start ))
grep -E '^== phase .*: [0-9]+ s|^   [a-z+-]+ +[0-9]+ s|passed|failed' "$work/ci.log" | tail -40 >&2 || true
echo "cold .ci/run: exit $rc, ${total} s wall" >&2
[ "${KEEP:-0}" = 1 ] || rm -rf "$work"
exit $rc
