"""In-process cost of one small request, with production settings: what every request pays.

    python tools/profile_requests.py                    # this tree's code, ~1 minute
    python tools/profile_requests.py --tree /work/main  # another checkout's code, to compare
    python tools/profile_requests.py --profile DIR      # also cProfile each kind into DIR
    python tools/profile_requests.py --kinds 50-point,49-point  # only the batch writes

Starts its own PostgreSQL (fsync and synchronous_commit on) and Redis on free loopback ports,
builds the app as production runs it (TSAPI_AUTH=required with a real key, rate limits on and
counted in Redis but never reached, Prometheus in multiprocess mode, the access log written)
and times a cached POST /query, a GET /metrics (cached), a 1-point POST /ingest, a 50-point
JSON POST /ingest and a 49-point line-protocol POST /write (bench_small's bodies) through
Flask's test client: no HTTP server or network in the figures, only the app, PostgreSQL and
Redis. With --day, also an uncached 1-day hourly mean of one series at a 10 s cadence
(bench_rollups' year series, two days stored and rolled up), through rollups and raw, on
the hour's boundaries and 30 s off them: the query path's own cost is its time minus
GET /metrics'. Each kind runs --runs times --requests requests: the median and 10th
percentile of all its requests are printed (less disturbed by other work on the machine
than a mean), and each run's mean. Compare trees in the same minutes, alternated.
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import logging
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
HIGH_LIMIT = "10000000/minute"  # on, counted in Redis, never reached
QUERY = {"metric": "bench.one", "start_time": "2021-01-01T00:00:00Z",
         "end_time": "2021-01-02T00:00:00Z", "aggregation": "avg", "interval": "1 hour"}
DAY_QUERY = orjson.dumps({**QUERY, "metric": "year_temp"})  # bench_rollups' year series
# The same day shifted by 30 s: not on the hour level's boundaries, so coverage is read
# first and both edges come from raw points.
SHIFTED_DAY_QUERY = orjson.dumps({**QUERY, "metric": "year_temp",
                                  "start_time": "2021-01-01T00:00:30Z",
                                  "end_time": "2021-01-02T00:00:30Z"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=HERE.parent,
                        help="the checkout whose tsapi package is measured")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", type=Path, help="write <kind>.prof and <kind>.txt here")
    parser.add_argument("--kinds", default="",
                        help="comma-separated prefixes of the kinds to run (default: all)")
    parser.add_argument("--day", action="store_true",
                        help="also time uncached 1-day hourly means (rollup and raw)")
    parser.add_argument("--only-day", action="store_true",
                        help="time only GET /metrics and the uncached 1-day means")
    args = parser.parse_args()
    # Before prometheus_client is imported, as gunicorn.conf.py does for the workers.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="tsapi-profile-prom-")
    sys.path[:0] = [str(args.tree.resolve()), str(HERE.parent / "tests"), str(HERE)]

    import bench_ingest as bi
    from services import PostgresServer, RedisServer

    from tsapi import create_app
    from tsapi.store.keys import create_key

    print(f"tree {args.tree.resolve()}; load average {os.getloadavg()}", flush=True)
    base = Path(tempfile.mkdtemp(prefix="tsapi-profile-"))
    pg = PostgresServer(base_dir=base, extra_conf={"fsync": "on", "synchronous_commit": "on"})
    redis = RedisServer(base_dir=base)
    try:
        pg.start()
        redis.start()
        url = bi.create_database(pg.url(), "tsapi_profile")
        settings = {
            "DATABASE_URL": url, "REDIS_URL": redis.url(), "TSAPI_AUTH": "required",
            "TSAPI_RATE_LIMITS": "on", "TSAPI_RATE_LIMIT_WRITE": HIGH_LIMIT,
            "TSAPI_RATE_LIMIT_READ": HIGH_LIMIT, "TSAPI_RATE_LIMIT_ADMIN": HIGH_LIMIT}
        app = create_app(settings)
        day_clients = {}
        if args.day or args.only_day:
            import bench_rollups as br
            br.store_points(url, br.year_points(2))
            br.refresh_rollups(url)
            for rollups in ("on", "off"):
                # No answer fits the cache: every request is answered anew.
                day_app = create_app({**settings, "TSAPI_ROLLUPS": rollups,
                                      "TSAPI_MAX_CACHED_BYTES": 1})
                day_clients[rollups] = day_app.test_client()
        with (base / "access.log").open("w") as log:
            for handler in logging.getLogger("tsapi").handlers:
                handler.setStream(log)  # written, as in production, not to this terminal
            with app.extensions["tsapi"].db.engine.begin() as conn:
                token = create_key(conn, "profile", {"read", "write"})[1]
            measure(app.test_client(), token, args, day_clients)
    finally:
        pg.cleanup()
        redis.cleanup()
    print(f"load average {os.getloadavg()}")


def measure(client, token: str, args: argparse.Namespace, day_clients: dict | None = None
            ) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    query = orjson.dumps(QUERY)
    serial = iter(range(10**9))

    def send(method: str, path: str, body: bytes | None = None, via=client) -> None:
        response = via.open(path, method=method, data=body, headers=headers)
        if response.status_code != 200:
            raise SystemExit(f"{method} {path}: {response.status_code} {response.data[:300]!r}")

    def ingest() -> None:
        n = next(serial)  # a new time each: every request writes a new point
        point = {"metric": "bench.one", "value": n * 0.5, "tags": {"device": "d"},
                 "time": f"2021-01-01T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}."
                         f"{n // 86400:06d}Z"}
        send("POST", "/ingest", orjson.dumps({"data": [point]}))

    # Telemetry points as bench_small sends them: 50-point JSON batches and 49-point line
    # protocol bodies (7 lines of 7 fields), a few rows bringing new devices (new series).
    import bench_ingest as bi
    points = bi.make_points(60_000, "profile")
    json_bodies = itertools.cycle([orjson.dumps({"data": c}) for c in bi.batches(points, 50)])
    lp_bodies = itertools.cycle([bi.line_protocol(c) for c in bi.batches(points, 49)])
    lp_headers = {"Authorization": f"Token {token}", "Content-Type": "text/plain"}

    def write_lp() -> None:
        response = client.post("/write?db=bench&precision=ns", data=next(lp_bodies),
                               headers=lp_headers)
        if response.status_code != 204:
            raise SystemExit(f"/write: {response.status_code} {response.data[:300]!r}")

    kinds = {"cached /query": lambda: send("POST", "/query", query),
             "GET /metrics": lambda: send("GET", "/metrics"),
             "1-point /ingest": ingest,
             "50-point /ingest": lambda: send("POST", "/ingest", next(json_bodies)),
             "49-point /write": write_lp}
    if getattr(args, "kinds", ""):
        wanted = args.kinds.split(",")
        kinds = {k: v for k, v in kinds.items() if any(k.startswith(w) for w in wanted)}
    if getattr(args, "only_day", False):
        kinds = {"GET /metrics": kinds["GET /metrics"]}
    for rollups, day_client in (day_clients or {}).items():
        path = "rollup" if rollups == "on" else "raw"
        kinds[f"1-day {path} /query"] = (
            lambda c=day_client: send("POST", "/query", DAY_QUERY, c))
        kinds[f"shifted 1-day {path} /query"] = (
            lambda c=day_client: send("POST", "/query", SHIFTED_DAY_QUERY, c))
    for _ in range(50):
        ingest()
    for name, call in kinds.items():
        for _ in range(200):  # warm: connections, caches, the cached answers
            call()
        means, each = [], []
        for _ in range(args.runs):
            run_started = time.perf_counter_ns()
            for _ in range(args.requests):
                started = time.perf_counter_ns()
                call()
                each.append(time.perf_counter_ns() - started)
            means.append((time.perf_counter_ns() - run_started) / args.requests / 1000)
        each.sort()
        print(f"{name:16} p50 {each[len(each) // 2] / 1000:5.0f} us, p10 "
              f"{each[len(each) // 10] / 1000:5.0f} us; mean per run "
              f"{', '.join(f'{m:.0f}' for m in means)} us", flush=True)
        if args.profile:
            stem = name.replace(" ", "_").replace("/", "")
            profile(call, args.requests, args.profile, stem)


def profile(call, requests: int, directory: Path, stem: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        call()
    profiler.disable()
    profiler.dump_stats(directory / f"{stem}.prof")
    with (directory / f"{stem}.txt").open("w") as out:
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(40)
        stats.sort_stats("cumulative").print_stats(80)


if __name__ == "__main__":
    main()
