#!/usr/bin/env python3
"""Print the pipeline benchmark of this project next to the reference stack's,
stage by stage, with the speed-up ratio (reference seconds / ours).
Usage: compare.py OURS.json REFERENCE.json"""
import json
import sys

STAGES = ["load", "clean", "kpis", "features", "train_linear", "train_random_forest", "train_xgboost",
          "segment_features", "kmeans", "total"]


def main(ours_path, ref_path):
    ours = json.load(open(ours_path))
    ref = json.load(open(ref_path))
    print(f"{'stage':<22}{'ours (s)':>10}{'reference (s)':>15}{'speed-up':>10}")
    for st in STAGES:
        a, b = ours["seconds"].get(st), ref["seconds"].get(st)
        ratio = f"{b / a:.1f}x" if a and b else "—"
        fa = f"{a:.2f}" if a is not None else "—"
        fb = f"{b:.2f}" if b is not None else "—"
        print(f"{st:<22}{fa:>10}{fb:>15}{ratio:>10}")
    a = ours["seconds"]["load"] + ours["seconds"]["clean"]
    b = ref["seconds"]["load"] + ref["seconds"]["clean"]
    print(f"{'load+clean':<22}{a:>10.2f}{b:>15.2f}{b / a:>9.1f}x")
    print()
    print(f"{'model':<16}{'RMSE ours':>12}{'RMSE ref':>12}{'R² ours':>10}{'R² ref':>10}")
    for m in ["baseline", "linear", "random_forest", "xgboost"]:
        a, b = ours["metrics"].get(m, {}), ref["metrics"].get(m, {})
        print(f"{m:<16}{a.get('rmse', float('nan')):>12.1f}{b.get('rmse', float('nan')):>12.1f}"
              f"{a.get('r2', float('nan')):>10.3f}{b.get('r2', float('nan')):>10.3f}")
    print()
    print(f"peak memory: ours {ours['peak_rss_bytes'] / 2**20:.0f} MiB, reference {ref['peak_rss_bytes'] / 2**20:.0f} MiB")


if __name__ == "__main__":
    main(*sys.argv[1:3])
