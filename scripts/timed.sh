#!/usr/bin/env bash
# Run a command as a named phase and report its wall time:
#   scripts/timed.sh NAME CMD [ARGS...]
# Prints "== NAME: N s" to stderr and, when PHASE_LOG is set, appends
# "NAME<TAB>N<TAB>exit status" to it (`scripts/timed.sh --summary` prints it).
set -uo pipefail
if [ "${1:-}" = "--summary" ]; then
  [ -n "${PHASE_LOG:-}" ] && [ -f "$PHASE_LOG" ] || exit 0
  echo "== phases (wall time)" >&2
  awk -F'\t' '{ printf "   %-16s %6d s  %s\n", $1, $2, ($3 == 0 ? "ok" : "FAILED") ; t += $2 } END { printf "   %-16s %6d s\n", "total", t }' "$PHASE_LOG" >&2
  exit 0
fi
name="$1"; shift
start=$(date +%s)
echo "== phase $name: started $(date +%T)" >&2
"$@"
rc=$?
secs=$(( $(date +%s) - start ))
echo "== phase $name: $secs s (exit $rc)" >&2
[ -n "${PHASE_LOG:-}" ] && printf '%s\t%s\t%s\n' "$name" "$secs" "$rc" >> "$PHASE_LOG"
exit $rc
