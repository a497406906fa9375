"""Round trips one uncached /query pays: statements PostgreSQL received, commands Redis ran.

    python tools/count_round_trips.py                    # this tree's code
    python tools/count_round_trips.py --tree /work/main  # another checkout's, to compare

Counts, not timings: the same on any machine at any load. Starts its own PostgreSQL (with
log_statement=all) and Redis on free loopback ports, builds the app as production runs it
(an API key required, rate limits on and counted in Redis, TSAPI_MAX_CACHED_BYTES=1 so no
answer is cached: profile_requests' settings), stores two days of bench_rollups' year series
and rolls them up. Each query is sent a few times to warm connections and caches, then
--requests times more: what the server log and Redis' command statistics gained over those
is divided by --requests and printed per statement (or command) text, with the Redis reads
(round trips: a pipeline's commands arrive in one read) and the CPU time the app's
PostgreSQL sessions used (in clock ticks of 10 ms: many requests make it exact enough).
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import re
import sys
import tempfile
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
HIGH_LIMIT = "10000000/minute"
DAY = {"metric": "year_temp", "start_time": "2021-01-01T00:00:00Z",
       "end_time": "2021-01-02T00:00:00Z", "aggregation": "avg", "interval": "1h"}
QUERIES = {
    "1-day hourly mean": DAY,
    "1-day daily mean": {**DAY, "interval": "1d"},
    "1-day hourly mean, 30 s off the hour": {**DAY, "start_time": "2021-01-01T00:00:30Z",
                                             "end_time": "2021-01-02T00:00:30Z"},
    "1-day hourly mean in Europe/Paris": {**DAY, "timezone": "Europe/Paris"},
}
STATEMENT = re.compile(r"LOG:  (?:statement|execute [^:]*): (.*)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=HERE.parent,
                        help="the checkout whose tsapi package is measured")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rollups", default="on", choices=("on", "off"))
    parser.add_argument("--show", action="store_true", help="print each statement's text")
    args = parser.parse_args()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="tsapi-trips-prom-")
    sys.path[:0] = [str(args.tree.resolve()), str(HERE.parent / "tests"), str(HERE)]

    import bench_ingest as bi
    import bench_rollups as br
    from services import PostgresServer, RedisServer

    from tsapi import create_app
    from tsapi.store.keys import create_key

    print(f"tree {args.tree.resolve()}, rollups {args.rollups}", flush=True)
    base = Path(tempfile.mkdtemp(prefix="tsapi-trips-"))
    pg = PostgresServer(base_dir=base, extra_conf={"log_statement": "all"})
    redis = RedisServer(base_dir=base)
    try:
        pg.start()
        redis.start()
        url = bi.create_database(pg.url(), "tsapi_trips")
        br.store_points(url, br.year_points(2))
        br.refresh_rollups(url)
        app = create_app({
            "DATABASE_URL": url, "REDIS_URL": redis.url(), "TSAPI_AUTH": "required",
            "TSAPI_RATE_LIMITS": "on", "TSAPI_RATE_LIMIT_WRITE": HIGH_LIMIT,
            "TSAPI_RATE_LIMIT_READ": HIGH_LIMIT, "TSAPI_RATE_LIMIT_ADMIN": HIGH_LIMIT,
            "TSAPI_ROLLUPS": args.rollups, "TSAPI_MAX_CACHED_BYTES": 1})
        with app.extensions["tsapi"].db.engine.begin() as conn:
            token = create_key(conn, "trips", {"read"})[1]
        for handler in logging.getLogger("tsapi").handlers:
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - the access log, unread
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        rc = _redis(redis.url())
        for label, body in QUERIES.items():
            payload = orjson.dumps(body)

            def send(payload=payload):
                response = client.post("/query", data=payload, headers=headers)
                if response.status_code != 200:
                    raise SystemExit(f"/query: {response.status_code} {response.data[:300]!r}")
                return response

            for _ in range(5):
                send()
            reads, cpu = _reads(rc), _backend_cpu(url)
            start, commands = pg.log_file.stat().st_size, _commandstats(rc)
            for _ in range(args.requests):
                answered = send().headers.get("X-Tsapi-Answered-From")
            statements = _statements(pg.log_file, start)
            cpu = _backend_cpu(url) - cpu
            ran = _commandstats(rc) - commands
            # Less the reads of this tool's own three INFO calls.
            trips = _reads(rc) - reads - 3
            ran.pop("info", None)
            n = args.requests
            print(f"\n{label} (answered from {answered}): {len(statements) / n:g} statements, "
                  f"{sum(ran.values()) / n:g} Redis commands (Lua's included) in "
                  f"{trips / n:g} round trips per request")
            by_text = collections.Counter(_short(s) for s in statements)
            print(f"  PostgreSQL CPU (the app's sessions): {cpu / n * 1000:.2f} ms per request")
            for text, count in by_text.most_common():
                if args.show or count >= n:
                    print(f"  {count / n:5g}  {text}")
            for name, count in ran.most_common():
                print(f"  {count / n:5g}  redis {name}")
    finally:
        pg.cleanup()
        redis.cleanup()
    return 0


def _redis(url: str):
    from redis import Redis
    return Redis.from_url(url)


def _commandstats(client) -> collections.Counter:
    stats = client.info("commandstats")
    return collections.Counter({k.removeprefix("cmdstat_"): v["calls"]
                                for k, v in stats.items()})


def _backend_cpu(url: str) -> float:
    """Seconds of CPU the app's PostgreSQL sessions have used (from /proc: same machine)."""
    import psycopg2
    with psycopg2.connect(url.replace("postgresql+psycopg2", "postgresql")) as conn, \
            conn.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'tsapi'")
        pids = [r[0] for r in cur.fetchall()]
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _reads(client) -> int:
    """Requests Redis has read from its clients: pipelined commands arrive in one read."""
    return client.info("stats")["total_reads_processed"]


def _statements(log_file: Path, start: int) -> list[str]:
    with log_file.open("rb") as f:
        f.seek(start)
        text = f.read().decode(errors="replace")
    return [m.group(1) for m in STATEMENT.finditer(text)]


def _short(statement: str) -> str:
    text = " ".join(statement.split())
    return text if len(text) <= 100 else text[:97] + "..."


if __name__ == "__main__":
    sys.exit(main())
