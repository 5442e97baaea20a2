#!/usr/bin/env bash
# The scheduled retrain, end to end, on a fresh checkout (what
# .github/workflows/retrain.yml runs, and what `make test` runs against the
# Snowflake emulator and a local DVC remote):
#
#   1. the registry: restored from the DVC remote (the *.dvc files of
#      $MODELS/customer_spend, $MODELS/segments and $MODELS/reports, committed
#      by the previous run); none yet: the first run starts an empty one;
#   2. the data: with APP_SOURCE=snowflake nothing is pulled (the job pushes
#      its aggregations down to the warehouse); otherwise `dvc pull $DATA`
#      (the curated folder tracked by DVC) and the job reads it;
#   3. `analytics retrain` (drift, champion vs challenger, promotion; it
#      trains nothing when the data's fingerprint is the live versions');
#   4. the registry back: `dvc add` + `dvc push`, and the *.dvc pointers
#      committed to git (COMMIT=1) and pushed (PUSH=1), so the next run, on
#      another fresh runner, finds this run's champion.
#
# Settings (environment):
#   ANALYTICS_BIN  the analytics binary            [target/release/analytics]
#   DVC            the dvc executable              [.venv-dvc/bin/dvc, else dvc]
#   MODELS         the registry folder             [models]
#   DATA           the curated Parquet folder      [data/curated]
#   PARAMS         retrain parameters              [params.yaml when present]
#   DVC_REMOTE_URL a DVC remote to add as the default (e.g. s3://bucket/path);
#                  unset: the repository's configured default remote
#   COMMIT=1       commit the updated *.dvc files; PUSH=1 also `git push`
#   RETRAIN_FLAGS  more flags for `analytics retrain` (e.g. --force)
#   REPORT_JSON    where the run's JSON report is copied  [retrain-report.json]
# Exit status: 0 when the run trained (or skipped unchanged data) and the
# registry is stored; non-zero, with the step that failed, otherwise.
set -euo pipefail

ANALYTICS_BIN=${ANALYTICS_BIN:-target/release/analytics}
if [ -z "${DVC:-}" ]; then
  if [ -x .venv-dvc/bin/dvc ]; then DVC=.venv-dvc/bin/dvc; else DVC=dvc; fi
fi
MODELS=${MODELS:-models}
DATA=${DATA:-data/curated}
REPORT_JSON=${REPORT_JSON:-retrain-report.json}
export DVC_NO_ANALYTICS=1 OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

step() { echo "== scheduled retrain: $*" >&2; }
fail() { echo "scheduled retrain: $*" >&2; exit 1; }

[ -x "$ANALYTICS_BIN" ] || fail "the analytics binary $ANALYTICS_BIN is missing (make setup, or set ANALYTICS_BIN)"
command -v "$DVC" >/dev/null 2>&1 || fail "dvc ($DVC) is missing (make dvc-env, or set DVC)"
[ -d .dvc ] || fail "$(pwd) is not a DVC repository (no .dvc folder)"

if [ -n "${DVC_REMOTE_URL:-}" ]; then
  step "DVC remote $DVC_REMOTE_URL"
  "$DVC" remote add --local --force --default scheduled "$DVC_REMOTE_URL" >/dev/null
fi

# The registry's folders, one DVC-tracked output each (the folder itself
# also holds git-tracked files such as models/README.md).
REGISTRY=("$MODELS/customer_spend" "$MODELS/segments" "$MODELS/reports")

step "restoring the registry from the DVC remote"
tracked=()
for d in "${REGISTRY[@]}"; do
  [ -f "$d.dvc" ] && tracked+=("$d.dvc")
done
if [ ${#tracked[@]} -gt 0 ]; then
  "$DVC" pull --force "${tracked[@]}" || fail "could not pull the registry (${tracked[*]}) from the DVC remote"
else
  echo "no registry stored yet: this run starts one" >&2
fi

data_args=()
if [ "$(printf '%s' "${APP_SOURCE:-}" | tr '[:upper:]' '[:lower:]')" = snowflake ]; then
  step "data: Snowflake (pushed down; nothing to pull)"
else
  step "data: dvc pull $DATA"
  # Tracked on its own ($DATA.dvc) or as an output of dvc.yaml.
  target=$DATA
  [ -f "$DATA.dvc" ] && target=$DATA.dvc
  "$DVC" pull --force "$target" || fail "could not pull the curated data $DATA from the DVC remote"
  data_args=(--data "$DATA")
fi

params_args=()
PARAMS=${PARAMS:-$( [ -f params.yaml ] && echo params.yaml || true )}
[ -n "$PARAMS" ] && params_args=(--params "$PARAMS")

step "retrain"
mkdir -p "$(dirname "$REPORT_JSON")"
# shellcheck disable=SC2086 # RETRAIN_FLAGS is a list of flags
"$ANALYTICS_BIN" retrain "${data_args[@]}" --models "$MODELS" "${params_args[@]}" \
  ${RETRAIN_FLAGS:-} --json > "$REPORT_JSON.tmp" || fail "analytics retrain failed; the stored registry is unchanged"
mv "$REPORT_JSON.tmp" "$REPORT_JSON"

step "storing the registry in the DVC remote"
present=()
for d in "${REGISTRY[@]}"; do
  [ -d "$d" ] && present+=("$d")
done
[ ${#present[@]} -gt 0 ] || fail "the retrain left no registry under $MODELS"
"$DVC" add "${present[@]}" >/dev/null || fail "dvc add of the registry failed"
pointers=()
for d in "${present[@]}"; do pointers+=("$d.dvc"); done
"$DVC" push "${pointers[@]}" || fail "could not push the registry to the DVC remote"

if [ "${COMMIT:-0}" = 1 ]; then
  step "committing the registry's pointers"
  git add "${pointers[@]}" "$MODELS/.gitignore" 2>/dev/null || git add "${pointers[@]}"
  if git diff --cached --quiet; then
    echo "the registry did not change" >&2
  else
    git -c user.name="${GIT_AUTHOR_NAME:-scheduled retrain}" \
        -c user.email="${GIT_AUTHOR_EMAIL:-retrain@localhost}" \
        commit -q -m "registry: scheduled retrain $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    if [ "${PUSH:-0}" = 1 ]; then
      git push -q || fail "could not push the registry's pointers to git"
    fi
  fi
fi
step "done: report in $REPORT_JSON"
