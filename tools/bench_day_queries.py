"""One series' day and year of means over HTTP: tsapi (this tree, and a baseline) and InfluxDB.

    python tools/bench_day_queries.py --baseline-rev main     # ~10 minutes (loads 3.15 M points)
    python tools/bench_day_queries.py --keep                  # keep the database for the next run
    python tools/bench_day_queries.py --influx-port 8952      # an influxd already holding the year

The queries of tools/bench_rollups.py that issue 10's goals are closest on: the 1-day hourly
and daily means of one series at a 10 s cadence, the same day 30 s off the hour, and the
365-day means (the 365-day p50 must stay within 3x the 1-day one). bench_rollups' year series
is stored (and rolled up) once, written to InfluxDB 1.x (Debian's `influxd`, started here on a
free loopback port) as line protocol, and served by gunicorn with production settings (an API
key, rate limits on in Redis, nothing cached: TSAPI_MAX_CACHED_BYTES=1), from this tree and,
with --baseline-rev, from that git revision's files, both on the same database.

Each query is timed on new HTTP connections (as bench_rollups times it), every round, then
on one connection kept alive per block (as Grafana sends its queries), every round again; the
two are printed side by side. A block is --repeat requests of one query to one server; in a
round the servers take their turns in an order that rotates from round to round, so drift
on a shared machine hits each alike. Before the rounds each server answers one other query
(bench_rollups' servers have answered others before these). Each block also reads what the
server's processes spent (tsapi: its gunicorn processes and the database's `tsapi`
sessions; InfluxDB: influxd when started here): CPU time to the nanosecond
(tools/process_cpu.py), which the machine's other work disturbs less than the wall time, and
context switches (a request handed from thread to thread, process to process, pays one
each, and on busy cores a wait for a core). Printed per query and connection mode: the p50
over every round's requests, the spread of the rounds' p50s, CPU ms and context switches per
request (medians of the rounds), and the ratios.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import orjson
import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tools"), str(ROOT / "tests")]

import bench_ingest as bi  # noqa: E402
import bench_rollups as br  # noqa: E402
from bench_rollups_ingest import create_token  # noqa: E402
from bench_servers import App, checkout, stop_servers  # noqa: E402
from process_cpu import CpuMeter, process_tree, thread_cpu_seconds  # noqa: E402
from services import free_port  # noqa: E402

LABELS = ("1 d 1h mean, one series", "1 d 1d mean, one series", "1 d +30 s 1h mean, one series",
          "{days} d 1h mean, one series", "{days} d 1d mean, one series")
SETTINGS = {"TSAPI_ROLLUPS": "on", "TSAPI_MAX_CACHED_BYTES": "1"}
MODES = ("new", "kept")


class Target:
    """A server the queries go to: how to send one, and which processes do its work."""

    def __init__(self, label: str, port: int, pids, token: str | None = None):
        self.label, self.port, self.pids, self.token = label, port, pids, token

    def request(self, body: dict, influxql: str) -> tuple[str, str, bytes, dict]:
        if self.token is None:
            query = urllib.parse.urlencode({"db": "bench", "q": influxql, "epoch": "ms"})
            return "POST", "/query?" + query, b"", {}
        return "POST", "/query", orjson.dumps(body), {
            "Content-Type": "application/json", "Authorization": f"Bearer {self.token}"}


def timed(target: Target, request, conn: http.client.HTTPConnection | None) -> tuple[float, bytes]:
    """Seconds from sending the request (connecting first when `conn` is None) to the last
    byte of the answer, and the answer."""
    method, path, body, headers = request
    own = conn is None
    started = time.perf_counter()
    conn = conn or http.client.HTTPConnection("127.0.0.1", target.port, timeout=300)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        took = time.perf_counter() - started
    finally:
        if own:
            conn.close()
    if response.status != 200:
        raise SystemExit(f"{target.label} {path}: {response.status} {data[:300]!r}")
    return took, data


def rows(target: Target, data: bytes) -> int:
    if target.token is not None:
        return len(orjson.loads(data))
    return sum(len(s["values"]) for s in orjson.loads(data)["results"][0].get("series", []))


def year_database(admin_url: str, name: str, days: int, reuse: bool) -> str:
    """bench_rollups' year series stored and rolled up in database `name` (kept as it is
    when `reuse` and it already holds the series)."""
    url = bi.sqlalchemy_url(admin_url, name)
    if reuse:
        try:
            with psycopg2.connect(bi.dsn(url)) as conn, conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM points")
                if cur.fetchone()[0] == days * 8640:
                    return url
        except psycopg2.Error:
            pass
    url = bi.create_database(admin_url, name)
    br.store_points(url, br.year_points(days))
    br.refresh_rollups(url)
    return url


def sessions(url: str):
    """The pids of the database's `tsapi` sessions now (both servers': the one not queried
    is idle and adds nothing)."""
    def pids() -> list[int]:
        with psycopg2.connect(bi.dsn(url)) as conn, conn.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                        "AND application_name = 'tsapi'")
            return [pid for (pid,) in cur.fetchall()]
    return pids


def context_switches(pids) -> dict[int, float]:
    """Each process's context switches so far (its live threads', voluntary or not): a
    thread handing a request to another costs a switch, whatever the load."""
    found = {}
    for pid in pids:
        total = 0
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{pid}/task/{task}/status") as status:
                    total += sum(int(line.split()[1]) for line in status
                                 if "ctxt_switches:" in line)
            except (OSError, ValueError, IndexError):
                continue
        found[pid] = float(total)
    return found


def block(target: Target, request, mode: str, repeat: int) -> tuple[list, float, float]:
    """`repeat` timed requests to one server (new connections, or one kept alive); the
    runs, and its CPU seconds and context switches per request."""
    meter = CpuMeter({"cpu": target.pids}, thread_cpu_seconds)
    switches = CpuMeter({"cs": target.pids}, context_switches)
    conn = (http.client.HTTPConnection("127.0.0.1", target.port, timeout=300)
            if mode == "kept" else None)
    meter.start()
    switches.start()
    runs = [timed(target, request, conn) for _ in range(repeat)]
    cpu, cs = meter.stop()["cpu"] / repeat, switches.stop()["cs"] / repeat
    if conn is not None:
        conn.close()
    return runs, cpu, cs


def measure(targets: list[Target], cases: list, args) -> dict:
    """{(query, mode, target): [(p50 s, CPU s, switches per request, [seconds…]) per
    round]}. The new-connection rounds come first, as in bench_rollups (whose servers
    answer nothing else between them), then the kept-alive ones."""
    found: dict = {}
    answers: dict = {}
    for mode in MODES:
        for n in range(args.rounds):
            order = targets[n % len(targets):] + targets[:n % len(targets)]
            for label, body, influxql in cases:
                for target in order:
                    runs, cpu, cs = block(target, target.request(body, influxql), mode,
                                          args.repeat)
                    times = [t for t, _ in runs]
                    found.setdefault((label, mode, target.label), []).append(
                        (statistics.median(times), cpu, cs, times))
                    answers.setdefault((label, target.token is None), set()).add(
                        runs[-1][1] if target.token is not None else rows(target, runs[-1][1]))
            print(f"{mode} connections: round {n + 1} of {args.rounds} done, load "
                  f"{os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
    for (label, influx), seen in answers.items():
        if not influx and len(seen) != 1:
            raise SystemExit(f"{label}: the tsapi servers answered differently")
    return found


def report(found: dict, targets: list[Target], cases: list, args) -> None:
    print(f"\n{os.cpu_count()} cores, load {os.getloadavg()}; {args.rounds} rounds of "
          f"{args.repeat} uncached requests per server, query and connection mode; ms")
    names = [t.label for t in targets]
    print(f"{'query':30} {'conn':4} " + " ".join(
        f"{name[:23]:>23} {'cpu':>5} {'cs':>4}" for name in names) + "   ratios of the p50s")
    p50 = {}
    for label, _, _ in cases:
        for mode in MODES:
            cells, ratios = [], []
            for name in names:
                rounds = found[(label, mode, name)]
                p50[(label, mode, name)] = statistics.median(t for r in rounds for t in r[3])
                medians = [r[0] * 1000 for r in rounds]
                cpu = statistics.median(r[1] for r in rounds) * 1000
                cs = statistics.median(r[2] for r in rounds)
                cells.append(f"{p50[(label, mode, name)] * 1000:7.2f} ({min(medians):5.1f}-"
                             f"{max(medians):5.1f}) {cpu:5.2f} {cs:4.0f}")
            for i, a in enumerate(names):
                for b in names[i + 1:]:
                    ratios.append(f"{a.split(':')[0]}/{b.split(':')[0]} "
                                  f"{p50[(label, mode, a)] / p50[(label, mode, b)]:.2f}")
            print(f"{label[:30]:30} {mode:4} " + " ".join(cells) + "   " + ", ".join(ratios))
    print("cells: p50 of all requests (the rounds' p50s, lowest-highest), CPU ms and context "
          "switches per request of the server's processes (medians of the rounds; influx: "
          "only when started here)")
    for interval in ("1h", "1d"):
        long = LABELS[3 if interval == "1h" else 4].format(days=args.year_days)
        day = f"1 d {interval} mean, one series"
        for mode in MODES:
            print(f"{args.year_days} d / 1 d, {interval} mean, {mode} connections: " + ", ".join(
                f"{name} {p50[(long, mode, name)] / p50[(day, mode, name)]:.1f}x"
                for name in names) + " (goal <= 3)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get(
        "DATABASE_URL", "postgresql://postgres@127.0.0.1:55432/postgres"))
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL",
                                                              "redis://127.0.0.1:56379/5"))
    parser.add_argument("--baseline-rev", help="also serve this git revision (e.g. main)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--year-days", type=int, default=365)
    parser.add_argument("--name", default="tsapi_bench_day", help="scratch database")
    parser.add_argument("--keep", action="store_true",
                        help="keep the database, and use it as it is if it holds the series")
    parser.add_argument("--influx-port", type=int,
                        help="an influxd already holding the series in database `bench`")
    parser.add_argument("--no-influx", action="store_true")
    args = parser.parse_args()

    url = year_database(args.database_url, args.name, args.year_days, args.keep)
    base = Path(tempfile.mkdtemp(prefix="tsapi-bench-day-"))
    apps, influx = [], None
    try:
        token = create_token(url)
        apps.append(App("tree", ROOT, url, args.redis_url, worker_class=None,
                        settings=SETTINGS))
        if args.baseline_rev:
            tree = checkout(args.baseline_rev, base)
            apps.append(App(f"base:{args.baseline_rev}", tree, url, args.redis_url,
                            worker_class=None, settings=SETTINGS))
        targets = [Target(a.label, a.port, lambda a=a: process_tree(a.proc.pid) +
                          sessions(url)(), token) for a in apps]
        if args.influx_port:
            targets.append(Target("influx", args.influx_port, lambda: []))
        elif not args.no_influx:
            influx = br.Influx(free_port())
            influx.write(br.year_points(args.year_days))
            targets.append(Target("influx", influx.port,
                                  lambda: process_tree(influx.proc.pid)))
        wanted = [label.format(days=args.year_days) for label in LABELS]
        cases = [c for c in br.cases(args.year_days) if c[0] in wanted]
        # As bench_rollups' servers have answered other queries before these: each server
        # answers one unmeasured query first (sessions opened, the first statements planned).
        warm = next(c for c in br.cases(args.year_days) if c[0] not in wanted and "1h" in c[0])
        for target in targets:
            timed(target, target.request(warm[1], warm[2]), None)
        found = measure(targets, cases, args)
    finally:
        stop_servers(apps)
        if influx:
            influx.stop()
        if not args.keep:
            bi.drop_database(args.database_url, args.name)
    report(found, targets, cases, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
