#!/usr/bin/env python3
"""Dashboard benchmark (shared/spec/benchmark.md, "Dashboard benchmark").

Starts the release `serve` binary on generated curated data (10 M lines by
default), then sends 100 varied filter changes (period + category + segment,
plus some state/channel) to GET /api/dashboard over loopback, one at a time,
and prints p50/p99 of the server time (the `compute_ms` the server reports,
also sent as a Server-Timing header) and of the client round trip, the
server's CPU time per filter change, p50/max by period length, the slowest
queries, the start-up time and the serve process's peak RSS (VmHWM).

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
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()

    models = a.models or os.path.join(target, "bench-data", "no-models")
    os.makedirs(models, exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", APP_RELOAD_INTERVAL_MS="0")
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
        queries, lengths = [], []
        for i in range(a.n):
            length = rng.choice([30, 90, 182, 365, 730])
            lengths.append(length)
            start = lo + timedelta(days=rng.randrange(0, max(1, span - min(length, span))))
            end = min(hi, start + timedelta(days=length - 1))
            q = [("from", start.isoformat()), ("to", end.isoformat())]
            for c in rng.sample(cats, rng.choice([0, 1, 1, 2, 3])):
                q.append(("category", c))
            if segs and rng.random() < 0.6:
                q.append(("segment", str(rng.choice(segs))))
            if rng.random() < 0.25:
                q.append(("state", rng.choice(states)))
            if rng.random() < 0.25:
                q.append(("channel", rng.choice(chans)))
            queries.append(urllib.parse.urlencode(q))

        get(base + "/api/dashboard")  # warm-up (not counted)
        server_ms, client_ms = [], []
        cpu0 = cpu_s(proc.pid)
        for q in queries:
            t = time.perf_counter()
            status, d = get(base + "/api/dashboard?" + q)
            client_ms.append((time.perf_counter() - t) * 1e3)
            assert status == 200, (status, d)
            server_ms.append(d["compute_ms"])
        cpu1 = cpu_s(proc.pid)
        by_length = {}
        for length, ms in zip(lengths, server_ms):
            by_length.setdefault(length, []).append(ms)
        slowest = sorted(zip(server_ms, queries), reverse=True)[:3]
        out = {
            "data": os.path.abspath(a.data),
            "completed_lines_note": "see serve's start-up line on stderr",
            "load_average_1m": round(os.getloadavg()[0], 2),
            "filter_changes": len(queries),
            "segment_model": opts["segments"]["available"],
            "server_ms": {"p50": round(pct(server_ms, 50), 1), "p99": round(pct(server_ms, 99), 1),
                          "max": round(max(server_ms), 1), "mean": round(sum(server_ms) / len(server_ms), 1)},
            # CPU time the server spent per filter change (both threads,
            # serialisation included): less sensitive to other load than wall time.
            "server_cpu_ms_per_change": round((cpu1 - cpu0) * 1e3 / len(queries), 1)
            if cpu0 is not None and cpu1 is not None else None,
            "client_round_trip_ms": {"p50": round(pct(client_ms, 50), 1), "p99": round(pct(client_ms, 99), 1)},
            "server_ms_by_period_days": {str(k): {"n": len(v), "p50": round(pct(v, 50), 1), "max": round(max(v), 1)}
                                         for k, v in sorted(by_length.items())},
            "slowest": [{"server_ms": round(ms, 1), "query": q} for ms, q in slowest],
            "startup_s": round(startup, 1),
            "rss_after_startup_mib": round(rss_ready / 1024) if rss_ready else None,
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
