#!/usr/bin/env python3
"""The scale run: the pipeline benchmark at several sizes, with the cost per
million lines and the peak memory per size (shared/spec/benchmark.md).

Usage: bench/scale.py --bin target/release/analytics [--sizes 1M,10M,30M]
                      [--runs 3] [--data-root target/bench-data] [--seed 42]
                      [--json OUT.json]

For each size it generates the data once (kept in DATA_ROOT/SIZE), runs
`analytics bench --data DIR --json` in its own process, and reads the stage
timings and the peak resident memory (the kernel's VmHWM of that process, as
`analytics bench` reports it). With --runs N it does that N times, the sizes
taking turns (1M, 10M, 1M, 10M, …: a slow spell of the shared machine falls
on both sizes alike, not on one), and reports each stage's median over the
runs, with its lowest and highest value, and the highest peak memory. The
per-line growth against the smallest size is the ratio of those medians: at
1 M lines a stage can take 15 ms in one run and 100 ms in the next on these
machines, and one run's ratio says more about that than about the code.
Each stage's CPU time (user and system) and minor page faults come too
(medians), with the system time per fault and the per-line growth of the
user time alone: the system time is mostly the kernel zeroing pages touched
for the first time, whose cost per page varies several-fold from run to run
on a VM (1.4 µs for a page the guest still holds, 5-16 µs for one its host
has taken back, measured on these machines).
Prints a table to stderr and the JSON to stdout (and to --json OUT when
given). A size that fails (e.g. out of memory) is reported as failed with
its exit status; the others still run.
"""
import statistics
import argparse
import json
import pathlib
import subprocess
import sys
import time


def lines_of(size):
    s = size.strip().upper()
    mult = {"K": 1_000, "M": 1_000_000}.get(s[-1], 1)
    return int(float(s[:-1] if s[-1] in "KM" else s) * mult)


def keys_in_order(dicts):
    """The keys of several dicts, each once, in order of first appearance."""
    out = []
    for d in dicts:
        out.extend(k for k in d if k not in out)
    return out


def print_table(ok, title, stages, size_head, cell, growth_key, growth_head, width):
    """A table to stderr: a row per stage, `cell(report, stage)` per size,
    then the growth against the smallest size (`growth_key` + its size)."""
    head = f"{title:<22}" + "".join(size_head(r) for r in ok)
    if len(ok) > 1:
        head += "".join(f"{growth_head + ok[0]['size']:>{width}}" for r in ok[1:])
    print(head, file=sys.stderr)
    for k in stages:
        row = f"{k:<22}" + "".join(cell(r, k) for r in ok)
        for r in ok[1:]:
            g = r.get(growth_key + ok[0]["size"], {}).get(k)
            row += f"{g:>{width}.2f}" if g is not None else f"{'—':>{width}}"
        print(row, file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--sizes", default="1M,10M,30M")
    ap.add_argument("--data-root", default="target/bench-data")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--runs", type=int, default=1,
                    help="runs per size, sizes taking turns; medians reported")
    ap.add_argument("--json")
    args = ap.parse_args()
    sizes = [s for s in args.sizes.split(",") if s]
    if args.runs < 1:
        sys.exit(f"bench/scale.py: --runs: expected a count of at least 1, found {args.runs}")
    for size in sizes:
        data = pathlib.Path(args.data_root) / size
        if not (data / "order_items.parquet").exists() and not (data / "order_items").exists():
            print(f"== generating {size} lines into {data}", file=sys.stderr)
            subprocess.run([args.bin, "generate", "--lines", size, "--seed", str(args.seed),
                            "--out", str(data)], check=True)
    # Per size: the reports of its runs, or its failure.
    runs = {size: [] for size in sizes}
    failed = {}
    for k in range(args.runs):
        for size in sizes:
            if size in failed:
                continue
            data = pathlib.Path(args.data_root) / size
            print(f"== bench at {size} lines (run {k + 1} of {args.runs})", file=sys.stderr)
            t0 = time.monotonic()
            r = subprocess.run([args.bin, "bench", "--data", str(data), "--json"],
                               capture_output=True, text=True, env=None)
            wall = time.monotonic() - t0
            if r.returncode != 0:
                print(r.stderr[-3000:], file=sys.stderr)
                failed[size] = {"size": size, "lines": lines_of(size), "failed": True,
                                "exit": r.returncode, "wall_seconds": wall}
                continue
            report = json.loads(r.stdout)
            report["wall_seconds"] = wall
            runs[size].append(report)
    results = []
    for size in sizes:
        if size in failed:
            results.append(failed[size])
            continue
        reports = runs[size]
        n = lines_of(size)
        per_run = [{k: v for k, v in rep["seconds"].items() if isinstance(v, (int, float))}
                   for rep in reports]
        stages = [k for k in per_run[0] if all(k in s for s in per_run)]
        seconds = {k: statistics.median(s[k] for s in per_run) for k in stages}
        by_stage = {}
        for rep in reports:
            for k, v in (rep.get("peak_rss_bytes_by_stage") or {}).items():
                by_stage[k] = max(by_stage.get(k, 0), v or 0)
        peaks = [rep.get("peak_rss_bytes") for rep in reports if rep.get("peak_rss_bytes")]
        # Each stage's CPU (user, system seconds) and minor page faults:
        # medians over the runs. The system time is mostly the kernel
        # zeroing pages touched for the first time.
        cpu = {}
        cpu_stages = [k for k in (reports[0].get("cpu_by_stage") or {})
                      if all((rep.get("cpu_by_stage") or {}).get(k) for rep in reports)]
        for k in cpu_stages:
            cpu[k] = {f: statistics.median(rep["cpu_by_stage"][k][f] for rep in reports)
                      for f in ("user_seconds", "system_seconds", "minor_faults")}
        results.append({
            "size": size,
            "lines": reports[0].get("rows", {}).get("order_items", n),
            "runs": len(reports),
            # The median over the runs; its lowest and highest beside it.
            "seconds": seconds,
            "seconds_range": {k: [min(s[k] for s in per_run), max(s[k] for s in per_run)]
                              for k in stages},
            "seconds_per_million_lines": {k: v / (n / 1e6) for k, v in seconds.items()},
            # The highest of the runs' peaks.
            "peak_rss_bytes": max(peaks) if peaks else None,
            # Each stage's own peak (the process peak is reset before it).
            "peak_rss_bytes_by_stage": by_stage or None,
            "cpu_by_stage": cpu or None,
            "wall_seconds": sum(rep["wall_seconds"] for rep in reports),
        })
    base = next((r for r in results if not r.get("failed")), None)
    if base:
        for r in results:
            if r.get("failed") or r is base:
                continue
            r["per_line_cost_vs_" + base["size"]] = {
                k: r["seconds_per_million_lines"][k] / base["seconds_per_million_lines"][k]
                for k in r["seconds_per_million_lines"]
                if base["seconds_per_million_lines"].get(k)}
            # The same growth for the user CPU time alone (the work, without
            # the kernel's page zeroing).
            scale = base["lines"] / r["lines"]
            r["per_line_user_cpu_vs_" + base["size"]] = {
                k: v["user_seconds"] * scale / base["cpu_by_stage"][k]["user_seconds"]
                for k, v in (r.get("cpu_by_stage") or {}).items()
                if (base.get("cpu_by_stage") or {}).get(k, {}).get("user_seconds")}
    out = {"runs": args.runs, "sizes": results}
    text = json.dumps(out, indent=2)
    if args.json:
        pathlib.Path(args.json).write_text(text + "\n")
    print(text)
    # The table, stage by stage: seconds, seconds per million lines, and the
    # growth of that per-line cost against the smallest size.
    ok = [r for r in results if not r.get("failed")]
    stages = keys_in_order(r["seconds"] for r in ok)
    if args.runs > 1:
        print(f"medians of {args.runs} runs per size (sizes in turn); range = lowest–highest",
              file=sys.stderr)
    def seconds_cell(r, k):
        v = r["seconds"].get(k)
        if v is None:
            return f"{'—':>12}{'':>16}{'—':>9}"
        lo, hi = r["seconds_range"][k]
        return f"{v:>12.3f}{f'{lo:.3f}–{hi:.3f}':>16}{r['seconds_per_million_lines'][k]:>9.3f}"
    print_table(ok, "stage", stages, lambda r: f"{r['size'] + ' s':>12}{'range':>16}{'s/M':>9}",
                seconds_cell, "per_line_cost_vs_", "x/M vs ", 14)
    mem = "".join(f"{(r['peak_rss_bytes'] or 0) / 2**30:>12.2f}{'':>16}{'GiB':>9}" for r in ok)
    print(f"{'peak memory':<22}{mem}", file=sys.stderr)
    mem_stages = keys_in_order(r.get("peak_rss_bytes_by_stage") or {} for r in ok)
    for stage in mem_stages:
        cells = ""
        for r in ok:
            v = (r.get("peak_rss_bytes_by_stage") or {}).get(stage)
            cells += f"{v / 2**30:>12.2f}{'':>16}{'GiB':>9}" if v else f"{'—':>12}{'':>16}{'':>9}"
        print(f"{'  peak in ' + stage:<22}{cells}", file=sys.stderr)
    cpu_stages = keys_in_order(r.get("cpu_by_stage") or {} for r in ok)
    def cpu_cell(r, k):
        c = (r.get("cpu_by_stage") or {}).get(k)
        if not c:
            return f"{'—':>42}"
        per_fault = (f"{c['system_seconds'] * 1e6 / c['minor_faults']:>8.1f}"
                     if c["minor_faults"] >= 1000 else f"{'—':>8}")
        return f"{c['user_seconds']:>12.2f} / {c['system_seconds']:<6.2f}{c['minor_faults']:>13,.0f}{per_fault}"
    if cpu_stages:
        print_table(ok, "CPU (medians)", cpu_stages,
                    lambda r: f"{r['size'] + ' user / sys s, faults, sys µs/fault':>42}",
                    cpu_cell, "per_line_user_cpu_vs_", "user x/M vs ", 18)
        print("sys µs/fault: the stage's system time per page fault (— under 1,000 "
              "faults); on a VM a page the host has taken back costs several times one "
              "the guest still holds, so a larger value at the larger size is the "
              "machine's, not the code's", file=sys.stderr)
    for r in results:
        if r.get("failed"):
            print(f"{r['size']}: FAILED (exit {r['exit']}) after {r['wall_seconds']:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
