#!/usr/bin/env python3
"""Print the pipeline benchmark of this project next to the reference stack's,
stage by stage, with the speed-up ratio (reference seconds / ours).

Usage: compare.py OURS.json REFERENCE.json
       compare.py --ours A.json B.json … --reference X.json Y.json …

With several runs of each, every stage's figure is the median of its runs
(the range is shown beside it): one run of either side moves by up to 40 %
on this kind of machine, and the first run after a build is slower.

Totals: "total, same stages" sums the stages both sides run (the ones the
reference times; spec/benchmark.md compares the same stages). Ours also
selects its models on a validation cutoff, which the reference does not do:
those stages (`select_*`) are listed apart, and "total, whole run" is each
side's own wall time, ours with the selection in it.
"""
import json
import statistics
import sys

STAGES = ["load", "clean", "kpis", "features", "train_linear", "train_random_forest", "train_xgboost",
          "segment_features", "kmeans"]
EXTRA = ["select_features", "select_linear", "select_random_forest", "select_xgboost", "select_training_mean"]


def parse_args(argv):
    if len(argv) == 2 and not argv[0].startswith("--"):
        return [argv[0]], [argv[1]]
    ours, ref, into = [], [], None
    for a in argv:
        if a == "--ours":
            into = ours
        elif a == "--reference":
            into = ref
        elif into is None:
            raise SystemExit(f"compare.py: expected --ours or --reference before {a!r}")
        else:
            into.append(a)
    if not ours or not ref:
        raise SystemExit("compare.py: expected at least one file after --ours and after --reference; "
                         f"found {len(ours)} and {len(ref)}")
    return ours, ref


def stage(runs, name):
    """(median, min, max) of a stage's seconds over the runs that have it, or None."""
    xs = [r["seconds"][name] for r in runs if r["seconds"].get(name) is not None]
    return (statistics.median(xs), min(xs), max(xs)) if xs else None


def fmt(s, spread):
    if s is None:
        return "—"
    if spread and s[2] > s[1]:
        return f"{s[0]:.2f} ({s[1]:.2f}–{s[2]:.2f})"
    return f"{s[0]:.2f}"


def main(argv):
    ours_paths, ref_paths = parse_args(argv)
    ours = [json.load(open(p)) for p in ours_paths]
    ref = [json.load(open(p)) for p in ref_paths]
    spread = len(ours) > 1 or len(ref) > 1
    w = 22 if spread else 10
    print(f"runs: ours {len(ours)}, reference {len(ref)}" + ("; medians (range)" if spread else ""))
    print(f"{'stage':<34}{'ours (s)':>{w}}{'reference (s)':>{w + 4}}{'speed-up':>10}")

    def row(name, a, b):
        ratio = f"{b[0] / a[0]:.1f}x" if a and b and a[0] > 0 else "—"
        print(f"{name:<34}{fmt(a, spread):>{w}}{fmt(b, spread):>{w + 4}}{ratio:>10}")

    for st in STAGES:
        row(st, stage(ours, st), stage(ref, st))

    def summed(runs, names):
        xs = [sum(r["seconds"].get(n) or 0.0 for n in names) for r in runs]
        return statistics.median(xs), min(xs), max(xs)

    row("load+clean", summed(ours, ["load", "clean"]), summed(ref, ["load", "clean"]))
    row("total, same stages", summed(ours, STAGES), summed(ref, STAGES))
    extra = [st for st in EXTRA if stage(ours, st)]
    for st in extra:
        row(f"{st} (ours only)", stage(ours, st), None)
    row("total, whole run", stage(ours, "total"), stage(ref, "total"))
    print()
    print(f"{'model':<16}{'RMSE ours':>12}{'RMSE ref':>12}{'R² ours':>10}{'R² ref':>10}")
    for m in ["baseline", "linear", "random_forest", "xgboost"]:
        a, b = ours[-1]["metrics"].get(m, {}), ref[-1]["metrics"].get(m, {})
        print(f"{m:<16}{a.get('rmse', float('nan')):>12.1f}{b.get('rmse', float('nan')):>12.1f}"
              f"{a.get('r2', float('nan')):>10.3f}{b.get('r2', float('nan')):>10.3f}")
    print()
    peak = lambda runs: max(r["peak_rss_bytes"] for r in runs) / 2**20
    print(f"peak memory: ours {peak(ours):.0f} MiB, reference {peak(ref):.0f} MiB")


if __name__ == "__main__":
    main(sys.argv[1:])
