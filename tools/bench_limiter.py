"""The rate limiter's cost per request, in process: the same authenticated request to an app
with rate limits on and one with them off, and a reference that adds one Redis round trip.

    python tools/bench_limiter.py [--blocks 60] [--per-block 100] [--path /metrics]

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
        with on.extensions["tsapi"].db.engine.begin() as conn:
            _, token = create_key(conn, "bench", {"read"})
        run(on.test_client(), off.test_client(), redis.Redis.from_url(rd.url()),
            {"Authorization": f"Bearer {token}"}, args)
    finally:
        rd.cleanup()
        pg.cleanup()


def run(on, off, client, headers, args) -> None:
    def block(app, extra=None) -> float:
        start = time.perf_counter_ns()
        for _ in range(args.per_block):
            response = app.get(args.path, headers=headers)
            if extra:
                extra()
        assert response.status_code == 200, response.data
        return (time.perf_counter_ns() - start) / args.per_block / 1e6

    block(on), block(off)  # warm up: key cache, connections, scripts
    times: dict[str, list[float]] = {"on": [], "off": [], "off + GET": []}
    for _ in range(args.blocks):
        times["on"].append(block(on))
        times["off"].append(block(off))
        times["off + GET"].append(block(off, lambda: client.get("bench")))

    def added(name: str) -> float:
        return statistics.median(a - b for a, b in zip(times[name], times["off"], strict=True))

    limiter, trip = added("on"), added("off + GET")
    print(f"load average {os.getloadavg()[0]:.2f}; {args.blocks} x {args.per_block} "
          f"requests of GET {args.path}, ms per request (median of blocks)")
    for name, values in times.items():
        print(f"  {name:10s} {statistics.median(values):.3f}")
    print(f"rate limiter adds {limiter:+.3f} ms; one Redis round trip adds {trip:+.3f} ms; "
          f"the limiter beyond it {limiter - trip:+.3f} ms")


if __name__ == "__main__":
    main()
