"""The rate limiter's cost per request, in process: the same authenticated request to an app
with rate limits on and one with them off, and a reference that adds one Redis round trip.

    python tools/bench_limiter.py [--blocks 60] [--per-block 100] [--path /metrics]
    python tools/bench_limiter.py --write    # a 1-point POST /ingest instead

With --write, a fourth kind: rate limits on, the count read before the view starts (as every
write's was before tsapi.api.counts_in_flight), beside the count sent ahead and read just
before the store.

It starts a private PostgreSQL and Redis (tests/services.py), serves two apps through Flask's
test client with TSAPI_AUTH=required and a real key, and times blocks of requests, the three
kinds interleaved block by block so that drift on a shared machine hits each alike. Reported:
medians of the per-block differences — limits on minus off (the limiter, 401 check included),
and "off plus one Redis GET" minus off (one round trip in the same conditions). To measure
another revision's code, run this file with PYTHONPATH set to that tree.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import redis  # noqa: E402
from alembic import command  # noqa: E402
from services import PostgresServer, RedisServer  # noqa: E402

from tsapi import create_app  # noqa: E402
from tsapi.cli import alembic_config  # noqa: E402
from tsapi.store.keys import create_key  # noqa: E402

HIGH = "100000000/minute"  # counted, never reached


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=60)
    parser.add_argument("--per-block", type=int, default=100)
    parser.add_argument("--path", default="/metrics", help="a read view")
    parser.add_argument("--write", action="store_true", help="time a 1-point POST /ingest")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    pg, rd = PostgresServer(), RedisServer()
    pg.start()
    rd.start()
    try:
        url = pg.create_database("tsapi_bench_limiter")
        config = alembic_config(url, "off")
        config.attributes["configure_logger"] = False
        command.upgrade(config, "head")
        settings = {"DATABASE_URL": url, "REDIS_URL": rd.url(), "TSAPI_AUTH": "required",
                    "TSAPI_RATE_LIMIT_READ": HIGH, "TSAPI_RATE_LIMIT_WRITE": HIGH}
        on = create_app({**settings, "TSAPI_RATE_LIMITS": "on"})
        off = create_app({**settings, "TSAPI_RATE_LIMITS": "off"})
        apps = {"on": on.test_client(), "off": off.test_client()}
        if args.write:
            before = create_app({**settings, "TSAPI_RATE_LIMITS": "on"})
            before.extensions["tsapi_rate_limits"].sender = None  # nothing sent ahead
            apps["on, read before the view"] = before.test_client()
        with on.extensions["tsapi"].db.engine.begin() as conn:
            _, token = create_key(conn, "bench", {"read", "write"})
        run(apps, redis.Redis.from_url(rd.url()), {"Authorization": f"Bearer {token}"}, args)
    finally:
        rd.cleanup()
        pg.cleanup()


def run(apps: dict, client, headers, args) -> None:
    serial = iter(range(10**9))

    def request(app):
        if not args.write:
            return app.get(args.path, headers=headers)
        # A new time each: the same write as the fleet's, a point appended to one series.
        point = {"time": 1_700_000_000 + next(serial), "metric": "bench", "value": 1.0}
        return app.post("/ingest", json={"data": [point]}, headers=headers)

    def block(app, extra=None) -> float:
        start = time.perf_counter_ns()
        for _ in range(args.per_block):
            response = request(app)
            if extra:
                extra()
        assert response.status_code == 200, response.data
        return (time.perf_counter_ns() - start) / args.per_block / 1e6

    for app in apps.values():
        block(app)  # warm up: key cache, connections, scripts
    times: dict[str, list[float]] = {name: [] for name in (*apps, "off + GET")}
    for _ in range(args.blocks):
        for name, app in apps.items():
            times[name].append(block(app))
        times["off + GET"].append(block(apps["off"], lambda: client.get("bench")))

    def added(name: str) -> float:
        return statistics.median(a - b for a, b in zip(times[name], times["off"], strict=True))

    what = "POST /ingest (1 point)" if args.write else f"GET {args.path}"
    print(f"load average {os.getloadavg()[0]:.2f}; {args.blocks} x {args.per_block} "
          f"requests of {what}, ms per request (median of blocks)")
    for name, values in times.items():
        print(f"  {name:26s} {statistics.median(values):.3f}")
    trip = added("off + GET")
    for name in apps:
        if name != "off":
            limiter = added(name)
            print(f"rate limiter ({name}) adds {limiter:+.3f} ms; one Redis round trip adds "
                  f"{trip:+.3f} ms; the limiter beyond it {limiter - trip:+.3f} ms")


if __name__ == "__main__":
    main()
