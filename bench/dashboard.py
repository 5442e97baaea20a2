#!/usr/bin/env python3
"""Dashboard benchmark (shared/spec/benchmark.md, "Dashboard benchmark").

Starts the release `serve` binary on generated curated data (10 M lines by
default), then sends, one at a time over loopback, 100 requests per
interaction of the page, each from a varied view (period of 30 days to two
years, categories, segment, state, channel): a filter change, a comparison
switch (previous / yoy), a cross-filter by category, state, segment and
month (GET /api/dashboard), a drill-down page (first pages) and a deep page
(GET /api/dashboard/orders, any sort, 25 to 200 rows). Prints p50/p99/max
of the server time per interaction (the `compute_ms` the server reports,
also sent as a Server-Timing header) and of the client round trip, the
server's CPU time per request, the slowest requests, the time to download
each CSV export (whole file, at the client), the start-up time and the
serve process's resident and peak memory (VmRSS, VmHWM).

    make bench-dashboard            # generates target/bench-data/10M once
    python3 bench/dashboard.py --data DIR [--models DIR] [--serve BIN] [--n 100]

Only the standard library; talks to 127.0.0.1 only.
"""
import argparse
import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(url):
    with urllib.request.urlopen(url, timeout=600) as r:
        return r.status, json.loads(r.read())


def pct(xs, p):
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(p / 100 * len(xs) + 0.5)) - 1))
    return xs[k]


def rss_kib(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def cpu_s(pid):
    """User + system CPU seconds of a process, all threads (/proc/PID/stat)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(root, "target")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--models", default=None, help="models folder (a live segment model enables the segment filter)")
    ap.add_argument("--serve", default=os.path.join(target, "release", "serve"))
    ap.add_argument("--n", type=int, default=100, help="requests per interaction")
    ap.add_argument("--exports", type=int, default=3, help="downloads per exported table")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()

    models = a.models or os.path.join(target, "bench-data", "no-models")
    os.makedirs(models, exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", APP_RELOAD_INTERVAL_MS="0")
    env.pop("APP_API_KEYS", None)  # keys off: loopback only
    env["APP_ACCESS_LOG"] = "off"  # stderr is a pipe read at the end only
    t0 = time.time()
    proc = subprocess.Popen([a.serve, "--bind", f"127.0.0.1:{port}", "--data", a.data, "--models", models],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while True:
            if proc.poll() is not None:
                sys.exit("serve exited:\n" + proc.stderr.read())
            try:
                status, opts = get(base + "/api/dashboard/options")
                if status == 200:
                    break
            except Exception:
                pass
            if time.time() - t0 > 1800:
                sys.exit("serve not ready after 30 min")
            time.sleep(0.5)
        startup = time.time() - t0
        rss_ready = rss_kib(proc.pid, "VmRSS")

        rng = random.Random(a.seed)
        from datetime import date, timedelta
        lo = date.fromisoformat(opts["min_date"])
        hi = date.fromisoformat(opts["max_date"])
        span = (hi - lo).days
        cats = opts["categories"]
        segs = [s["id"] for s in opts["segments"]["segments"]] if opts["segments"]["available"] else []
        states = [s["code"] for s in opts["states"]]
        chans = opts["channels"]

        def period(length=None):
            length = length or rng.choice([30, 90, 182, 365, 730])
            start = lo + timedelta(days=rng.randrange(0, max(1, span - min(length, span))))
            end = min(hi, start + timedelta(days=length - 1))
            return length, [("from", start.isoformat()), ("to", end.isoformat())]

        def filter_change():
            length, q = period()
            for c in rng.sample(cats, rng.choice([0, 1, 1, 2, 3])):
                q.append(("category", c))
            if segs and rng.random() < 0.6:
                q.append(("segment", str(rng.choice(segs))))
            if rng.random() < 0.25:
                q.append(("state", rng.choice(states)))
            if rng.random() < 0.25:
                q.append(("channel", rng.choice(chans)))
            return length, q

        def month_of(d):
            return d.year * 12 + d.month - 1

        def month_range(m):
            y, mo = divmod(m, 12)
            first = date(y, mo + 1, 1)
            nxt = date(y + (mo + 1) // 12, (mo + 1) % 12 + 1, 1)
            return first, nxt - timedelta(days=1)

        # One interaction = what one click asks the server. Each starts from
        # a varied view (period, scope) and changes one thing.
        def interaction(kind):
            length, q = filter_change()
            if kind == "filter_change":
                return "/api/dashboard", length, q
            if kind == "comparison_switch":
                return "/api/dashboard", length, q + [("compare", rng.choice(["previous", "yoy"]))]
            if kind == "cross_filter_category":
                q = [x for x in q if x[0] != "category"] + [("category", rng.choice(cats))]
            elif kind == "cross_filter_state":
                q = [x for x in q if x[0] != "state"] + [("state", rng.choice(states))]
            elif kind == "cross_filter_segment":
                q = [x for x in q if x[0] != "segment"] + ([("segment", str(rng.choice(segs)))] if segs else [])
            elif kind == "cross_filter_month":
                m = rng.randrange(month_of(lo), month_of(hi) + 1)
                first, last = month_range(m)
                q = [x for x in q if x[0] not in ("from", "to")] + [("from", first.isoformat()), ("to", last.isoformat())]
                length = (last - first).days + 1
            elif kind.startswith("drill_down"):
                size = rng.choice([25, 50, 200])
                sort = rng.choice(["date", "revenue", "items"])
                q = q + [("sort", sort), ("dir", rng.choice(["asc", "desc"])), ("page_size", str(size))]
                if rng.random() < 0.2:
                    q.append(("period", "comparison"))
                # The page: first pages mostly, deep ones for `drill_down_deep`.
                status, first = get(base + "/api/dashboard/orders?" + urllib.parse.urlencode(q))
                pages = max(1, first["pages"])
                page = rng.randrange(1, pages + 1) if kind == "drill_down_deep" else rng.choice([1, 1, 2, 3])
                return "/api/dashboard/orders", length, q + [("page", str(min(page, pages)))]
            return "/api/dashboard", length, q

        kinds = ["filter_change", "comparison_switch", "cross_filter_category", "cross_filter_state",
                 "cross_filter_month", "drill_down_page", "drill_down_deep"]
        if segs:
            kinds.insert(5, "cross_filter_segment")
        get(base + "/api/dashboard")  # warm-up (not counted)
        results = {}
        cpu0 = cpu_s(proc.pid)
        n_total = 0
        slow = []
        for kind in kinds:
            server_ms, client_ms, lengths = [], [], []
            for _ in range(a.n):
                route, length, q = interaction(kind)
                qs = urllib.parse.urlencode(q)
                t = time.perf_counter()
                status, d = get(base + route + "?" + qs)
                client_ms.append((time.perf_counter() - t) * 1e3)
                assert status == 200, (status, d)
                server_ms.append(d["compute_ms"])
                lengths.append(length)
                slow.append((d["compute_ms"], kind, route + "?" + qs))
            n_total += a.n
            results[kind] = {
                "n": a.n,
                "server_ms": {"p50": round(pct(server_ms, 50), 1), "p99": round(pct(server_ms, 99), 1),
                              "max": round(max(server_ms), 1)},
                "client_round_trip_ms": {"p50": round(pct(client_ms, 50), 1), "p99": round(pct(client_ms, 99), 1)},
            }
        cpu1 = cpu_s(proc.pid)

        # Exports: the whole CSV, timed at the client (download included).
        exports = {}
        for table in ["categories", "states", "segments", "products", "customers", "orders"]:
            times, sizes, rows = [], [], []
            for _ in range(a.exports):
                _, q = period(rng.choice([30, 365]))
                if table == "orders" and rng.random() < 0.5:
                    q.append(("category", rng.choice(cats)))
                t = time.perf_counter()
                with urllib.request.urlopen(base + "/api/dashboard/export.csv?" +
                                            urllib.parse.urlencode([("table", table)] + q), timeout=600) as r:
                    body = r.read()
                    rows.append(int(r.headers.get("X-Rows", "0")))
                times.append((time.perf_counter() - t) * 1e3)
                sizes.append(len(body))
            exports[table] = {"n": a.exports, "ms_p50": round(pct(times, 50), 1), "ms_max": round(max(times), 1),
                              "rows_max": max(rows), "mib_max": round(max(sizes) / 2**20, 1)}

        slow.sort(reverse=True)
        out = {
            "data": os.path.abspath(a.data),
            "load_average_1m": round(os.getloadavg()[0], 2),
            "segment_model": opts["segments"]["available"],
            "interactions": results,
            # CPU time the server spent per request (both threads,
            # serialisation included): less sensitive to other load than wall time.
            "server_cpu_ms_per_request": round((cpu1 - cpu0) * 1e3 / n_total, 1)
            if cpu0 is not None and cpu1 is not None else None,
            "slowest": [{"server_ms": round(ms, 1), "interaction": k, "query": q} for ms, k, q in slow[:3]],
            "exports_client_ms": exports,
            "startup_s": round(startup, 1),
            "rss_after_startup_mib": round(rss_ready / 1024) if rss_ready else None,
            "rss_now_mib": round((rss_kib(proc.pid, "VmRSS") or 0) / 1024),
            "peak_rss_mib": round((rss_kib(proc.pid, "VmHWM") or 0) / 1024),
        }
        print(json.dumps(out, indent=2))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        err = proc.stderr.read() if proc.stderr else ""
        for line in err.splitlines():
            if "dashboard" in line:
                print("# serve: " + line.strip(), file=sys.stderr)


if __name__ == "__main__":
    main()
