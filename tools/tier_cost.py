"""CPU cost per tier: what nginx, the gunicorn nodes, PostgreSQL (primary and standby) and
Redis each spend per 1,000 points ingested and per query.

    tools/dev up --nodes 2 --replica        # in one terminal (the topology this measures)
    .venv/bin/python tools/tier_cost.py     # in another; --help for the knobs

Each tier's CPU time is read from /proc/<pid>/stat (user + system, including children
already reaped) for every process of that tier: nginx's master and workers, each node's
gunicorn master and workers, each PostgreSQL cluster's postmaster and backends, Redis. A
phase's cost is the difference before and after it, divided by its work. The load comes
from this process through nginx, so it is not counted in any tier. Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")
# Sample data's day, so queries read real points (tools/dev up loads it).
SAMPLE_DAY = datetime(2020, 7, 12, tzinfo=UTC)


def cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime of one process, in seconds (0 when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    return sum(int(v) for v in fields[11:15]) / TICKS  # fields 14-17 of proc(5)


def tree(pid: int) -> list[int]:
    """pid and all its descendants."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError):  # the process just exited
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return found


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def discover(local: Path) -> dict[str, list[int]]:
    """The root process of each tier, from the pid files of tools/dev's .local directory."""
    tiers: dict[str, list[int]] = {}
    candidates = {
        "nginx": [local / "nginx" / "nginx.pid"],
        "gunicorn": sorted((local / "nginx").glob("node-*.pid")),
        "postgres primary": [local / "pg" / "postmaster.pid"],
        "postgres standby": [local / "pg-standby" / "postmaster.pid"],
        "redis": [local / "redis" / "redis.pid"],
    }
    for tier, paths in candidates.items():
        pids = [pid for pid in map(read_pid, paths) if pid and Path(f"/proc/{pid}").exists()]
        if pids:
            tiers[tier] = pids
    return tiers


def snapshot(tiers: dict[str, list[int]]) -> dict[str, float]:
    return {tier: sum(cpu_seconds(p) for root in roots for p in tree(root))
            for tier, roots in tiers.items()}


class Client:
    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.conn = http.client.HTTPConnection(host, port, timeout=120)

    def post(self, path: str, body: dict) -> tuple[int, bytes]:
        data = json.dumps(body).encode()
        for attempt in range(2):
            try:
                self.conn.request("POST", path, body=data,
                                  headers={"Content-Type": "application/json"})
                response = self.conn.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
                if attempt:
                    raise
        raise AssertionError("unreachable")


def run_parallel(host: str, port: int, jobs: list, clients: int) -> None:
    """Send every (path, body) of `jobs` from `clients` connections; each must answer 200."""
    failures: list = []

    def worker(k: int) -> None:
        client = Client(host, port)
        for path, body in jobs[k::clients]:
            status, answer = client.post(path, body)
            if status != 200:
                failures.append((status, answer[:200]))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, e.g. {failures[0]}")


def ingest_jobs(batches: int, size: int) -> list:
    # Fresh points each run (a metric of their own, times from now back), so every point is
    # an insert, as in steady ingest, and reruns do not turn into upserts.
    base = int(time.time()) * 1_000_000
    metric = f"tier_cost_{base}"
    return [("/ingest", {"data": [
        {"time": (base - (b * size + i) * 1000) / 1e6, "metric": metric,
         "value": float(i), "tags": {"device": f"d{i % 3}"}} for i in range(size)]})
        for b in range(batches)]


def query_jobs(kind: str, count: int) -> list:
    jobs = []
    for n in range(count):
        # A different range each time: no response-cache hits, every query reaches a database.
        start = SAMPLE_DAY + timedelta(seconds=n)
        if kind == "hourly average, 1 day":
            body = {"metric": "temperature", "start_time": start.isoformat(),
                    "end_time": (start + timedelta(days=1)).isoformat(),
                    "aggregation": "avg", "interval": "1 hour"}
        else:  # raw points, 10 minutes
            body = {"metric": "temperature", "start_time": start.isoformat(),
                    "end_time": (start + timedelta(minutes=10)).isoformat()}
        jobs.append(("/query", body))
    return jobs


def measure(tiers, label: str, unit: str, units: float, action) -> dict[str, float]:
    before = snapshot(tiers)
    started = time.monotonic()
    action()
    elapsed = time.monotonic() - started
    after = snapshot(tiers)
    cost = {tier: (after[tier] - before[tier]) / units for tier in tiers}
    cells = " | ".join(f"{cost[t] * 1000:.1f}" for t in tiers)
    print(f"| {label} | {unit} | {cells} | {sum(cost.values()) * 1000:.1f} | {elapsed:.1f} |",
          flush=True)
    return cost


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=f"http://127.0.0.1:{os.environ.get('PORT', '8000')}",
                        help="nginx in front of the nodes (default: tools/dev up's)")
    parser.add_argument("--local", type=Path, default=ROOT / ".local",
                        help="tools/dev's state directory, for the pid files")
    parser.add_argument("--batches", type=int, default=200, help="ingest batches")
    parser.add_argument("--batch-size", type=int, default=1000, help="points per batch")
    parser.add_argument("--queries", type=int, default=300, help="queries of each kind")
    parser.add_argument("--clients", type=int, default=2, help="concurrent connections")
    args = parser.parse_args(argv)
    host, _, port = args.url.removeprefix("http://").partition(":")
    tiers = discover(args.local)
    if "nginx" not in tiers or "gunicorn" not in tiers:
        print(f"no nginx / gunicorn nodes found under {args.local}: run tools/dev up first",
              file=sys.stderr)
        return 1
    print(f"tiers: {', '.join(f'{t} ({len(r)})' for t, r in tiers.items())}; "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print("CPU milliseconds per unit of work, by tier:\n")
    print(f"| work | unit | {' | '.join(tiers)} | all tiers | wall s |")
    print(f"|---|---|{'---|' * (len(tiers) + 2)}")
    size = args.batch_size
    measure(tiers, f"ingest, {size}-point JSON batches", "1,000 points",
            args.batches * size / 1000,
            lambda: run_parallel(host, int(port), ingest_jobs(args.batches, size),
                                 args.clients))
    for kind in ("hourly average, 1 day", "raw points, 10 minutes"):
        measure(tiers, f"query: {kind}", "query", args.queries,
                lambda kind=kind: run_parallel(host, int(port), query_jobs(kind, args.queries),
                                               args.clients))
    return 0


if __name__ == "__main__":
    sys.exit(main())
