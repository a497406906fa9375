"""Small-request benchmark with production settings: the per-request cost of fleet traffic.

    tools/dev bench-small                      # everything below, private servers, ~3 minutes
    tools/dev bench-small --baseline-rev main  # also serve that revision's code, same run
    python tools/bench_small.py --help

It starts its own PostgreSQL (fsync and synchronous_commit on: acknowledged means durable),
Redis and InfluxDB 1.x (the Debian package `influxd`), all on free loopback ports with
private data directories, and serves tsapi with gunicorn and gunicorn.conf.py, with
TSAPI_AUTH=required (a real key), rate limits on (set high enough not to trip), plus two
variants for the overheads: auth off, and rate limits off. It measures:
  (1) 1-point POST /ingest, cached POST /query and GET /metrics latency (p50, p99), the
      servers interleaved round by round, so drift hits each alike; auth and rate-limiter
      overhead are the p50 differences to the variants (with --baseline-limits-off, the
      baseline's rate-limiter overhead too, against its own variant). The floor, interleaved
      too: a bare one-row INSERT and COMMIT over psycopg2 on the same durable PostgreSQL, which no
      acknowledged (durable) write can beat; tsapi's overhead is its p50 above it;
  (2) 50-point JSON batches from 1, 2 and 4 clients (points/s, and the servers' CPU per
      request, as in (3)); with --baseline-rev, the ratio and the 4x goal
      (`--baseline-rev fe03d71` serves the tree issue 11 measured);
      with --group-commit-ab, the same with and without commit_delay, alternated;
  (3) 49-point line-protocol requests (7 lines of 7 fields) from 2 clients, the identical
      request to tsapi's POST /write and to InfluxDB's, alternated, with the ratio; and the
      ceiling: tools/bench_floor_app.py (a Flask view that only reads the body) under the
      same gunicorn settings, whose rate no Flask service can pass here; and each server's
      CPU per request (tools/process_cpu.py: tsapi's gunicorn, PostgreSQL and Redis, influxd,
      the ceiling), which sets the rates on a machine other work keeps busy;
  (4) 5,000-point batches from 2 clients (large batches must not get slower);
  (5) mixed traffic: 4 clients cycling through the requests of (1) and a 50-point batch,
      twice: the 1-point write to the queried metric (each query is computed, as the write
      made the cached answer stale), then to another one (each query is a cache hit);
  (6) a fleet: N devices each POSTing 7 points every 10 s for D seconds, open loop (sends
      follow the schedule, not the answers); p50/p99 latency, errors, lag behind schedule,
      and a check that every point is stored exactly once (count and value sum).
Every stored count is checked. Loopback only; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg2
import redis as redis_client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))

import bench_ingest as bi  # noqa: E402
from bench_servers import (  # noqa: E402
    HIGH_LIMIT,
    App,
    Client,
    CommitFloor,
    Influx,
    auth_headers,
    checkout,
    framework_ceiling,
    make_key,
    migrated_database,
    print_server_errors,
    set_commit_delay,
    stop_servers,
    tree_venv,
)
from process_cpu import CpuMeter, postmaster_pid, process_tree  # noqa: E402
from services import PostgresServer, RedisServer  # noqa: E402

DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
GROUP_COMMIT_SIBLINGS = 1  # so that 2 clients can share a flush too
LP_PATH = "/write?db=bench&precision=ns"
# --worker-class: gunicorn's GUNICORN_WORKER_CLASS for each choice.
WORKER_CLASSES = {"tsapi": "tsapi.api.worker.DeadlineThreadWorker", "gthread": "gthread",
                  "sync": "sync"}

_EPOCH = datetime(2021, 1, 1, tzinfo=UTC)


def one_point(serial: int, device: str, metric: str = "bench.one") -> bytes:
    stamp = (_EPOCH + timedelta(seconds=serial)).isoformat()
    return orjson.dumps({"data": [{"metric": metric, "time": stamp,
                                   "value": serial * 0.5, "tags": {"device": device}}]})


QUERY = orjson.dumps({"metric": "bench.one", "start_time": "2021-01-01T00:00:00Z",
                      "end_time": "2021-01-02T00:00:00Z", "aggregation": "avg",
                      "interval": "1 hour"})


FLOOR = "commit floor"


def latencies(apps: list[App], token: str, rounds: int, per_round: int,
              floor: CommitFloor) -> dict:
    """{(app label, kind): [seconds]}: each round runs every kind on every app in turn, then
    the bare commit (under the key (FLOOR, FLOOR))."""
    out: dict[tuple[str, str], list[float]] = {}
    for _ in range(20):
        floor.send()
    clients = {a.label: Client(a.port, auth_headers(token)) for a in apps}
    serial = {a.label: 0 for a in apps}
    for a in apps:  # warm up: connections, caches, the query's cached answer
        c = clients[a.label]
        for _ in range(20):
            c.send("POST", "/ingest", one_point(10**6 + serial[a.label], a.label), 200)
            serial[a.label] += 1
        c.send("POST", "/query", QUERY, 200)
        c.send("GET", "/metrics", None, 200)
    for _ in range(rounds):
        for a in apps:
            c = clients[a.label]
            for kind in ("write 1 point", "cached /query", "GET /metrics"):
                times = out.setdefault((a.label, kind), [])
                for _ in range(per_round):
                    if kind == "write 1 point":
                        serial[a.label] += 1
                        times.append(c.send("POST", "/ingest",
                                            one_point(serial[a.label], a.label), 200))
                    elif kind == "cached /query":
                        times.append(c.send("POST", "/query", QUERY, 200))
                    else:
                        times.append(c.send("GET", "/metrics", None, 200))
        times = out.setdefault((FLOOR, FLOOR), [])
        for _ in range(per_round):
            times.append(floor.send())
    return out


def _sender(port, headers, path, ok, bodies, barrier, results):
    client = Client(port, headers)
    times = []
    barrier.wait()
    try:
        for body in bodies:
            times.append(client.send("POST", path, body, ok))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the run
        results.put(("error", repr(exc)))
        return
    results.put(("ok", times))


def throughput(port: int, headers: dict, path: str, ok: int, bodies: list[bytes],
               clients: int) -> tuple[float, list[float]]:
    """Wall seconds for `clients` processes to send every body, and each request's latency."""
    ctx = mp.get_context("fork")
    barrier, results = ctx.Barrier(clients + 1), ctx.Queue()
    procs = [ctx.Process(target=_sender, args=(port, headers, path, ok, bodies[i::clients],
                                               barrier, results)) for i in range(clients)]
    for p in procs:
        p.start()
    barrier.wait()
    start = time.perf_counter()
    times: list[float] = []
    for _ in procs:
        kind, value = results.get(timeout=600)
        if kind == "error":
            raise RuntimeError(value)
        times.extend(value)
    elapsed = time.perf_counter() - start
    for p in procs:
        p.join()
    return elapsed, times


def _mixed_client(port, token, seconds, index, barrier, results, one_metric):
    client = Client(port, auth_headers(token))
    batch = [{"metric": "bench.mixed", "time": None, "value": 1.0,
              "tags": {"device": f"mixed{index}"}} for _ in range(50)]
    times: dict[str, list[float]] = {}
    serial = 0
    barrier.wait()
    end = time.perf_counter() + seconds
    try:
        while time.perf_counter() < end:
            serial += 1
            base = serial * 100
            for p_i, p in enumerate(batch):
                p["time"] = (_EPOCH + timedelta(seconds=base + p_i)).isoformat()
            times.setdefault("write 1", []).append(client.send(
                "POST", "/ingest", one_point(serial, f"mixed{index}", one_metric), 200))
            times.setdefault("write 50", []).append(client.send(
                "POST", "/ingest", orjson.dumps({"data": batch}), 200))
            times.setdefault("query", []).append(client.send("POST", "/query", QUERY, 200))
            times.setdefault("metrics", []).append(client.send("GET", "/metrics", None, 200))
    except Exception as exc:  # noqa: BLE001
        results.put(("error", repr(exc)))
        return
    results.put(("ok", times))


def mixed(port: int, token: str, clients: int, seconds: float,
          cached_query: bool = False) -> tuple[float, dict]:
    """Each client cycles: 1-point write, 50-point write, /query, GET /metrics. The 1-point
    write goes to the metric the query reads (so the query is computed: the write bumped its
    generation), or, with cached_query, to another metric (the query is a cache hit)."""
    one_metric = "bench.mixed.one" if cached_query else "bench.one"
    ctx = mp.get_context("fork")
    barrier, results = ctx.Barrier(clients + 1), ctx.Queue()
    procs = [ctx.Process(target=_mixed_client, args=(port, token, seconds, i, barrier,
                                                     results, one_metric))
             for i in range(clients)]
    for p in procs:
        p.start()
    barrier.wait()
    start = time.perf_counter()
    merged: dict[str, list[float]] = {}
    for _ in procs:
        kind, value = results.get(timeout=seconds + 120)
        if kind == "error":
            raise RuntimeError(value)
        for k, v in value.items():
            merged.setdefault(k, []).extend(v)
    elapsed = time.perf_counter() - start
    for p in procs:
        p.join()
    return elapsed, merged


# -- the fleet ----------------------------------------------------------------------------
FLEET_FIELDS = 7
FLEET_GRACE_SECONDS = 30.0  # sends this late past the run's end are skipped, and counted


def fleet_body(device: int, round_: int, interval: float) -> bytes:
    stamp = (_EPOCH + timedelta(days=30, seconds=round_ * interval + device * 0.001))
    stamp_text = stamp.isoformat()
    return orjson.dumps({"data": [
        {"metric": f"fleet.f{k}", "time": stamp_text, "value": fleet_value(device, round_, k),
         "tags": {"device": f"dev{device:05d}"}} for k in range(FLEET_FIELDS)]})


def fleet_value(device: int, round_: int, field: int) -> float:
    return float(device * 1000 + round_ * 10 + field)


def _fleet_process(port, token, schedule, start_at, threads, results, give_up_at):
    """Send each (due, device, round) at its time from `threads` threads; open loop. Sends
    not started by `give_up_at` are skipped (counted): the run ends in bounded time."""
    lock = threading.Lock()
    position = [0]
    outcome = {"latency": [], "lag": [], "errors": [], "sent": [], "skipped": []}

    def worker():
        client = Client(port, auth_headers(token))
        while True:
            with lock:
                if position[0] >= len(schedule):
                    return
                due, device, round_ = schedule[position[0]]
                position[0] += 1
            body = fleet_body(device, round_, 10.0)
            wait = start_at + due - time.time()
            if wait > 0:
                time.sleep(wait)
            if time.time() > give_up_at:
                outcome["skipped"].append((device, round_))
                continue
            lag = time.time() - (start_at + due)
            try:
                latency = client.send("POST", "/ingest", body, 200)
            except Exception as exc:  # noqa: BLE001 - counted as an error, the run goes on
                outcome["errors"].append(repr(exc)[:200])
                client = Client(port, auth_headers(token))
                continue
            outcome["latency"].append(latency)
            outcome["lag"].append(lag)
            outcome["sent"].append((device, round_))

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    results.put(outcome)


def fleet(port: int, token: str, devices: int, seconds: float, interval: float,
          processes: int, threads: int) -> dict:
    rounds = max(1, int(seconds // interval))
    ctx = mp.get_context("fork")
    results = ctx.Queue()
    start_at = time.time() + 2.0
    plans = [[] for _ in range(processes)]
    for r in range(rounds):
        for d in range(devices):
            # Devices are spread evenly over the interval, as unsynchronised clocks are.
            plans[d % processes].append((r * interval + d * interval / devices, d, r))
    give_up_at = start_at + seconds + FLEET_GRACE_SECONDS
    procs = [ctx.Process(target=_fleet_process, args=(port, token, sorted(plan), start_at,
                                                      threads, results, give_up_at))
             for plan in plans]
    for p in procs:
        p.start()
    merged = {"latency": [], "lag": [], "errors": [], "sent": [], "skipped": []}
    for _ in procs:
        outcome = results.get(timeout=seconds + 300)
        for k in merged:
            merged[k].extend(outcome[k])
    for p in procs:
        p.join()
    merged["rounds"] = rounds
    merged["wall"] = time.time() - start_at
    return merged


def fleet_stored(url: str) -> tuple[int, float]:
    with psycopg2.connect(bi.dsn(url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*), coalesce(sum(p.value_num), 0) FROM points p "
                    "JOIN series s ON s.id = p.series_id JOIN metrics m ON m.id = s.metric_id "
                    "WHERE m.name LIKE 'fleet.%'")
        n, total = cur.fetchone()
        return n, float(total)


# -- the report ---------------------------------------------------------------------------
def pct(values: list[float], q: int) -> float:
    return bi.percentile(sorted(values), q) * 1000


def cpu_line(cpu: dict[str, dict[str, float]]) -> str:
    """Each server's CPU per request, in µs, and its parts (tools/process_cpu.py)."""
    return "server CPU per request (us): " + "; ".join(
        f"{name} {sum(parts.values()):,.0f}"
        + (" (" + ", ".join(f"{k} {v:,.0f}" for k, v in parts.items()) + ")"
           if len(parts) > 1 else "")
        for name, parts in cpu.items())


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline-rev", help="also serve this git revision (e.g. main), "
                        "same database and settings, and print the ratios")
    parser.add_argument("--baseline-limits-off", action="store_true",
                        help="also serve the baseline with rate limits off, for its own "
                        "rate-limiter overhead in (1)")
    parser.add_argument("--baseline-own-workers", action="store_true",
                        help="serve the baseline with the worker model of its own "
                        "gunicorn.conf.py (as it was deployed; fe03d71: sync), not this one's")
    # The default is the production model (gunicorn.conf.py: tsapi's gthread worker, which
    # spreads connections by count, 4 threads); a baseline revision served with this model
    # (no --baseline-own-workers) gets gunicorn's gthread, as it may not have tsapi's.
    parser.add_argument("--worker-class", default="tsapi", choices=WORKER_CLASSES)
    parser.add_argument("--also-worker-class", choices=WORKER_CLASSES,
                        help="also serve this tree with this worker class, same run")
    parser.add_argument("--threads", type=int, default=4, help="gthread threads per worker")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="gunicorn workers (default: gunicorn.conf.py's, one per core)")
    parser.add_argument("--reuse-port", action="store_true",
                        help="gunicorn reuse_port: one listening socket per worker")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=20)
    parser.add_argument("--small-rows", type=int, default=1500,
                        help="telemetry rows (7 points each) per 50-point run")
    # 140,000 points a server a round, 3 rounds: one round of 70,000 (about a second) swung
    # 0.94x-1.22x between runs minutes apart on a machine at load 4-5.
    parser.add_argument("--large-rows", type=int, default=20_000)
    parser.add_argument("--large-rounds", type=int, default=3,
                        help="rounds of (4), the servers alternated; the median ratio is the "
                        "result")
    parser.add_argument("--lp-rows", type=int, default=3_500)
    parser.add_argument("--mixed-seconds", type=float, default=10.0)
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--fleet-seconds", type=float, default=60.0)
    parser.add_argument("--fleet-processes", type=int, default=4)
    parser.add_argument("--fleet-threads", type=int, default=16)
    parser.add_argument("--group-commit-ab", type=int, metavar="MICROSECONDS",
                        help="in (2), also run prod with this commit_delay and without, "
                        "alternated on the same server")
    parser.add_argument("--skip", action="append", default=[],
                        choices=("latency", "batches", "lp", "large", "mixed", "fleet"))
    args = parser.parse_args()

    started = time.time()
    print(f"load average at start: {load_average()} ({os.cpu_count()} cores)", flush=True)
    base = Path(tempfile.mkdtemp(prefix="tsapi-bench-small-"))
    pg = PostgresServer(base_dir=base, extra_conf=DURABLE)
    redis = RedisServer(base_dir=base)
    influx = None
    apps: list[App] = []
    report: list[str] = []
    goals: list[tuple[str, bool]] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        report.append(line)

    try:
        pg.start()
        redis.start()
        admin = pg.url()
        url = bi.create_database(admin, "tsapi_bench_small")
        token = make_key(url)
        kind = {"worker_class": WORKER_CLASSES[args.worker_class], "threads": args.threads,
                "workers": args.workers, "reuse_port": args.reuse_port}
        prod = App("prod", ROOT, url, redis.url(), **kind)
        apps.append(prod)
        variants = [App("auth off", ROOT, url, redis.url(), auth=False, **kind),
                    App("limits off", ROOT, url, redis.url(), limits=False, **kind)]
        apps.extend(variants)
        baseline = None
        if args.baseline_rev:
            # Its own database, migrated by its own code, and its own Redis database: the
            # schema and the cache formats may differ.
            tree = checkout(args.baseline_rev, base)
            bin_dir = tree_venv(tree)
            base_url = migrated_database(admin, "tsapi_bench_baseline", tree, bin_dir)
            make_key(base_url, token)
            own = {**kind, "worker_class": None if args.baseline_own_workers
                   else WORKER_CLASSES[args.worker_class.replace("tsapi", "gthread")]}
            label = f"base:{args.baseline_rev}" + ("/own" if args.baseline_own_workers else "")
            baseline = App(label, tree, base_url, redis.url(1), bin_dir=bin_dir, **own)
            apps.append(baseline)
            if args.baseline_limits_off:
                # The baseline's own rate-limiter overhead, in the same run as this tree's.
                base_off = App(f"{label} limits off", tree, base_url, redis.url(1),
                               bin_dir=bin_dir, limits=False, **own)
                apps.append(base_off)
                variants.append(base_off)
        say(f"server: gunicorn.conf.py, {args.worker_class}"
            f"{f' x{args.threads} threads' if args.worker_class != 'sync' else ''}, "
            f"{prod.workers} workers{', reuse_port' if args.reuse_port else ''}; "
            f"PostgreSQL fsync+synchronous_commit on; Redis; "
            f"TSAPI_AUTH=required, rate limits on ({HIGH_LIMIT})")
        headers = auth_headers(token)

        if "latency" not in args.skip:
            say("\n(1) latency, ms (interleaved; p50 / p99)")
            floor = CommitFloor(url)
            try:
                lat = latencies(apps, token, args.rounds, args.per_round, floor)
            finally:
                floor.close()
            kinds = ("write 1 point", "cached /query", "GET /metrics")
            say(f"{'server':16}" + "".join(f"{k:>22}" for k in kinds))
            for a in apps:
                say(f"{a.label:16}" + "".join(
                    f"{pct(lat[a.label, k], 50):>13.2f} /{pct(lat[a.label, k], 99):>6.2f}"
                    for k in kinds))
            for k in kinds:
                p = pct(lat["prod", k], 50)
                auth = p - pct(lat["auth off", k], 50)
                limit = p - pct(lat["limits off", k], 50)
                say(f"  {k}: auth adds {auth:+.2f} ms, rate limiter adds {limit:+.2f} ms")
                if baseline and args.baseline_limits_off:
                    base_limit = pct(lat[baseline.label, k], 50) - pct(
                        lat[f"{baseline.label} limits off", k], 50)
                    say(f"  {k}: {baseline.label}'s rate limiter adds {base_limit:+.2f} ms")
                goals.append((f"auth overhead {k} <= 0.3 ms", auth <= 0.3))
                goals.append((f"rate limiter overhead {k} <= 0.3 ms", limit <= 0.3))
            write = pct(lat["prod", kinds[0]], 50)
            bare = lat[FLOOR, FLOOR]
            say(f"  floor: a bare one-row INSERT + COMMIT (psycopg2, same PostgreSQL, "
                f"interleaved) p50 {pct(bare, 50):.2f} / p99 {pct(bare, 99):.2f} ms; "
                f"tsapi's 1-point write p50 {write:.2f} ms, {write - pct(bare, 50):+.2f} ms "
                f"above the floor")
            goals.append(("1-point write p50 <= 2 ms", write <= 2))
            goals.append(("cached /query p50 <= 1.5 ms", pct(lat["prod", kinds[1]], 50) <= 1.5))
            goals.append(("GET /metrics p50 <= 1.5 ms", pct(lat["prod", kinds[2]], 50) <= 1.5))
        for a in variants:  # only (1) needs them: free the cores
            a.stop()

        targets = [prod] + ([baseline] if baseline else [])
        if args.also_worker_class:
            # This tree again with another worker class, for (2), (4) and (5) only.
            also = App(f"prod/{args.also_worker_class}", ROOT, url, redis.url(),
                       **{**kind, "worker_class": WORKER_CLASSES[args.also_worker_class]})
            apps.append(also)
            targets.append(also)
        label_n = iter(range(10_000))

        redis_pid = redis_client.Redis.from_url(redis.url()).info("server")["process_id"]
        cpu_per_request: dict[str, dict[str, float]] = {}  # the last run_batches' of each app

        def server_cpu(app: App) -> CpuMeter:
            return CpuMeter({"gunicorn": lambda: process_tree(app.proc.pid),
                             "PostgreSQL": lambda: process_tree(postmaster_pid(pg.data_dir)),
                             "Redis": lambda: [redis_pid]})

        def run_batches(size: int, rows: int, clients: int, app: App) -> float:
            url = app.url
            bi.truncate_points(url)
            points = bi.make_points(rows, f"r{next(label_n)}")
            bodies = [orjson.dumps({"data": c}) for c in bi.batches(points, size)]
            meter = server_cpu(app)
            meter.start()
            seconds, times = throughput(app.port, headers, "/ingest", 200, bodies, clients)
            cpu_per_request[app.label] = {k: v / len(bodies) * 1e6
                                          for k, v in meter.stop().items()}
            stored, sent = bi.count_points(url), bi.unique_points(points)
            if stored != sent:
                raise SystemExit(f"{app.label}: stored {stored} of {sent} points")
            return len(points) / seconds

        if "batches" not in args.skip:
            say("\n(2) 50-point JSON batches, points/s"
                + (f" (goal: >= 4x {baseline.label})" if baseline else ""))
            for clients in (1, 2, 4):
                rates = {a.label: run_batches(50, args.small_rows, clients, a) for a in targets}
                line = f"  {clients} clients: " + ", ".join(
                    f"{k} {v:,.0f}" for k, v in rates.items())
                if baseline:
                    ratio = rates["prod"] / rates[baseline.label]
                    line += (f"  ratio {ratio:.2f}x (4x would be "
                             f"{4 * rates[baseline.label]:,.0f})")
                    goals.append((f"50-point batches, {clients} clients >= 4x baseline",
                                   ratio >= 4))
                say(line)
                say(f"    {cpu_line(cpu_per_request)}")
            if args.group_commit_ab:
                delay = args.group_commit_ab
                say(f"  group commit A/B on prod (commit_delay {delay} us vs 0, commit_siblings "
                    f"{GROUP_COMMIT_SIBLINGS}; alternated, same server):")
                for clients in (1, 2, 4):
                    pairs = []
                    for us in (0, delay, 0, delay):
                        set_commit_delay(admin, us, GROUP_COMMIT_SIBLINGS)
                        pairs.append(run_batches(50, args.small_rows, clients, prod))
                    off, on = pairs[0] + pairs[2], pairs[1] + pairs[3]
                    say(f"    {clients} clients: off {off / 2:,.0f}, on {on / 2:,.0f}, "
                        f"ratio {on / off:.2f}x")
                set_commit_delay(admin, None)

        if "lp" not in args.skip:
            influx = Influx(base)
            ceiling = framework_ceiling("flask floor", **kind)
            apps.append(ceiling)  # stopped with the others should the run fail
            say(f"\n(3) 49-point line protocol, 2 clients, points/s ({influx.version})")
            points = bi.make_points(args.lp_rows, "lp")
            bodies = [bi.line_protocol(c) for c in bi.batches(points, 49)]
            lp_headers = {**auth_headers(token, "text/plain")}
            plain = {"Content-Type": "text/plain"}
            meters = {
                "tsapi": server_cpu(prod),
                "influxdb": CpuMeter({"influxd": lambda: [influx.proc.pid]}),
                "ceiling": CpuMeter({"gunicorn": lambda: process_tree(ceiling.proc.pid)}),
            }

            def measured(name: str, port: int, path: str, heads: dict) -> float:
                """points/s; the servers' CPU per request is kept in cpu[name]."""
                meters[name].start()
                seconds, _ = throughput(port, heads, path, 204, bodies, 2)
                cpu[name] = {k: v / len(bodies) * 1e6 for k, v in meters[name].stop().items()}
                return len(points) / seconds

            for attempt in (1, 2):
                cpu: dict[str, dict[str, float]] = {}
                bi.truncate_points(url)
                influx.drop()
                ours = measured("tsapi", prod.port, LP_PATH, lp_headers)
                assert bi.count_points(url) == bi.unique_points(points), "tsapi LP count"
                theirs = measured("influxdb", influx.port, LP_PATH, plain)
                stored = influx.count()
                assert stored == bi.unique_points(points), f"influx stored {stored}"
                most = measured("ceiling", ceiling.port, "/write", lp_headers)
                say(f"  pair {attempt}: tsapi {ours:,.0f}, influxdb {theirs:,.0f}, "
                    f"ratio {ours / theirs:.2f}; ceiling (a Flask view that only reads the "
                    f"body, same gunicorn settings) {most:,.0f} = {most / theirs:.2f}x "
                    f"influxdb, tsapi at {ours / most:.2f} of it")
                say(f"    {cpu_line(cpu)}")
                goals.append((f"line protocol pair {attempt} >= 0.7x influxdb",
                              ours / theirs >= 0.7))
            influx.stop()
            influx = None
            ceiling.stop()

        if "large" not in args.skip:
            say("\n(4) 5,000-point JSON batches, 2 clients, points/s"
                + (f" ({args.large_rounds} rounds, the servers alternated)"
                   if args.large_rounds > 1 else ""))
            # Alternated round by round, the first server changing each round: drift and
            # the other work on the machine hit both alike.
            ratios = []
            for round_ in range(args.large_rounds):
                order = targets if round_ % 2 == 0 else targets[::-1]
                rates = {a.label: run_batches(5000, args.large_rows, 2, a) for a in order}
                line = "  " + ", ".join(f"{a.label} {rates[a.label]:,.0f}" for a in targets)
                if baseline:
                    ratios.append(rates["prod"] / rates[baseline.label])
                    line += f"  ratio {ratios[-1]:.2f}x"
                say(line + f"  (load {load_average()})")
                say(f"    {cpu_line(cpu_per_request)}")
            if ratios:
                ratios.sort()
                median = ratios[len(ratios) // 2] if len(ratios) % 2 else (
                    ratios[len(ratios) // 2 - 1] + ratios[len(ratios) // 2]) / 2
                say(f"  median ratio {median:.2f}x over {len(ratios)} rounds "
                    f"(range {ratios[0]:.2f}-{ratios[-1]:.2f})")
                goals.append((f"5,000-point batches >= 1x {baseline.label} (median)",
                              median >= 1))

        if "mixed" not in args.skip:
            say(f"\n(5) mixed traffic, 4 clients, {args.mixed_seconds:.0f} s each "
                "(1-point write, 50-point write, query, metrics); the query is computed when "
                "the 1-point write goes to its metric, cached when it goes to another")
            for cached_query in (False, True):
                for a in targets:
                    seconds, times = mixed(a.port, token, 4, args.mixed_seconds, cached_query)
                    total = sum(len(v) for v in times.values())
                    say(f"  {a.label} (query {'cached' if cached_query else 'computed'}): "
                        f"{total / seconds:,.0f} requests/s; p50/p99 ms " + ", ".join(
                            f"{k} {pct(v, 50):.1f}/{pct(v, 99):.1f}" for k, v in times.items()))

        if "fleet" not in args.skip:
            say(f"\n(6) fleet: {args.devices} devices x {FLEET_FIELDS} points every 10 s, "
                f"{args.fleet_seconds:.0f} s, open loop, "
                f"{args.fleet_processes}x{args.fleet_threads} client threads")
            bi.truncate_points(url)
            out = fleet(prod.port, token, args.devices, args.fleet_seconds, 10.0,
                        args.fleet_processes, args.fleet_threads)
            sent = out["sent"]
            stored, total = fleet_stored(url)
            expected_total = sum(fleet_value(d, r, k) for d, r in sent
                                 for k in range(FLEET_FIELDS))
            once = stored == len(sent) * FLEET_FIELDS and abs(total - expected_total) < 1e-6 \
                and len(set(sent)) == len(sent)
            lat = out["latency"] or [0.0]
            say(f"  {len(sent)} requests acknowledged in {out['wall']:.1f} s, "
                f"{len(out['skipped'])} skipped (too late), "
                f"{len(out['errors'])} errors; latency p50 {pct(lat, 50):.1f} ms, "
                f"p99 {pct(lat, 99):.1f} ms, max {max(lat) * 1000:.1f} ms; "
                f"lag behind schedule p99 {pct(out['lag'] or [0.0], 99):.1f} ms")
            say(f"  stored {stored} points for {len(sent) * FLEET_FIELDS} acknowledged "
                f"(value sum {'matches' if once else 'DIFFERS'}): "
                f"{'every point stored exactly once' if once else 'MISMATCH'}")
            if out["errors"]:
                say(f"  first error: {out['errors'][0]}")
            goals.append(("fleet p99 <= 50 ms", pct(lat, 99) <= 50))
            goals.append(("fleet: no errors, every request sent",
                          not out["errors"] and len(sent) == args.devices * out["rounds"]))
            goals.append(("fleet: every point stored once", once))
    except Exception:
        print_server_errors(apps)
        raise
    finally:
        stop_servers(apps)
        if influx:
            influx.stop()
        redis.cleanup()
        pg.cleanup()
        shutil.rmtree(base, ignore_errors=True)

    say(f"\ngoals (this run): {sum(ok for _, ok in goals)}/{len(goals)} met")
    for name, ok in goals:
        say(f"  [{'met' if ok else 'MISSED'}] {name}")
    say(f"load average at end: {load_average()}; {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
