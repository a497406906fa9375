"""Query benchmark: tsapi's POST /query against the same SELECT run as COPY … TO STDOUT.

    tools/dev bench-query                  # starts the local services, then runs this
    python tools/bench_query.py --help     # against any PostgreSQL (+ Redis) you name

It creates a scratch database, loads the full synthetic telemetry set (405,184 rows, about
2.8 million points, 3 devices) through tsapi's own writer, serves tsapi with gunicorn as
gunicorn.conf.py configures production, and for each query prints the p50 end to end, the
p50 of the baseline (the SELECT tsapi runs, compiled to SQL and sent through psycopg2 as
COPY (…) TO STDOUT: the fastest way rows leave the database) and the ratio. Then a raw
export of over a million points streams as CSV while the worker's peak RSS is watched.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import psycopg2
from psycopg2.extras import Json
from sqlalchemy.dialects.postgresql import psycopg2 as psycopg2_dialect

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tools"), str(ROOT)]

import telemetry  # noqa: E402
from bench_ingest import Server, create_database, drop_database, dsn, request  # noqa: E402

from tsapi.store.engine import WORK_MEM  # noqa: E402

DAY = ("2020-07-14T00:00:00Z", "2020-07-15T00:00:00Z")
WEEK = ("2020-07-12T00:00:00Z", "2020-07-19T00:00:00Z")
DEVICE = "b8:27:eb:bf:9d:51"


def load(url: str, rows: int) -> int:
    """Store the telemetry set with tsapi's writer (not timed: this is set-up)."""
    from tsapi import create_app
    from tsapi.formats.validation import validate_points
    from tsapi.store.writer import write_batch

    app = create_app({"DATABASE_URL": url, "TSAPI_AUTH": "off"})
    db = app.extensions["tsapi"].db
    total, batch = 0, []
    for row in telemetry.generate_rows(rows, telemetry.DEFAULT_SEED, telemetry.DEFAULT_START,
                                       telemetry.DEFAULT_DAYS):
        batch.extend(telemetry.row_to_points(row))
        if len(batch) >= 100_000:
            total += write_batch(db.engine, validate_points(batch), db.series_cache).points
            batch = []
    if batch:
        total += write_batch(db.engine, validate_points(batch), db.series_cache).points
    with psycopg2.connect(dsn(url)) as conn, conn.cursor() as cur:
        cur.execute("ANALYZE")
    db.dispose()
    return total


def baseline_sql(url: str, body: dict, rendering: bool = False) -> str:
    """The SELECT of the rows for this request, with its parameters inlined (benchmark only).

    With rendering=True, for raw queries: the statement tsapi really runs, which also renders
    the rows as JSON text in the database.
    """
    from tsapi import create_app
    from tsapi.formats.aggregations import parse_aggregation
    from tsapi.formats.intervals import parse_interval
    from tsapi.store.buckets import BucketQuery, bucket_statement
    from tsapi.store.catalog import get_metric
    from tsapi.store.queries import RawQuery, Selection, raw_json_statement, raw_statement

    app = create_app({"DATABASE_URL": url, "TSAPI_AUTH": "off"})
    db = app.extensions["tsapi"].db
    start = datetime.fromisoformat(body["start_time"]).astimezone(UTC)
    end = datetime.fromisoformat(body["end_time"]).astimezone(UTC)
    with db.engine.connect() as conn:
        metric = get_metric(conn, body["metric"])
    tags = body.get("tags") or {}
    selection = Selection(metric, tags)
    if "aggregation" in body:
        stmt = bucket_statement(db.storage, BucketQuery(
            selection, start, end, parse_aggregation(body["aggregation"]),
            parse_interval(body["interval"])))
    elif rendering:
        stmt = raw_json_statement(RawQuery(selection, start, end, limit=100_001))
    else:
        stmt = raw_statement(RawQuery(selection, start, end, limit=None))
    db.dispose()
    # psycopg2 inlines the values exactly as it would send them as parameters.
    compiled = stmt.compile(dialect=psycopg2_dialect.dialect(),
                            compile_kwargs={"render_postcompile": True})
    params = {k: Json(v) if isinstance(v, dict) else v for k, v in compiled.params.items()}
    with psycopg2.connect(dsn(url)) as conn, conn.cursor() as cur:
        return cur.mogrify(compiled.string, params).decode()


def time_copy(url: str, sql: str, repeat: int) -> list[float]:
    conn = psycopg2.connect(dsn(url))
    cur = conn.cursor()
    cur.execute(f"SET timezone = 'UTC'; SET work_mem = '{WORK_MEM}'")  # as tsapi's sessions
    times = []
    for _ in range(repeat):
        out = io.BytesIO()
        start = time.perf_counter()
        cur.copy_expert(f"COPY ({sql}) TO STDOUT", out)
        times.append(time.perf_counter() - start)
    conn.close()
    return times


def time_http(port: int, body: dict, repeat: int, cached: bool) -> tuple[list[float], int]:
    payload = orjson.dumps(body)
    times, rows = [], 0
    if cached:
        request(port, "POST", "/query", payload)  # warm the entry
    for _ in range(repeat):
        if not cached:
            request(port, "POST", f"/cache/metrics/{body['metric']}/clear")
        start = time.perf_counter()
        status, data = request(port, "POST", "/query", payload)
        times.append(time.perf_counter() - start)
        if status != 200:
            raise SystemExit(f"/query failed: {status} {data[:300]!r}")
        rows = len(orjson.loads(data))
    return times, rows


def p50(values: list[float]) -> float:
    return statistics.median(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get(
        "DATABASE_URL", "postgresql://postgres@127.0.0.1:55432/postgres"))
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    parser.add_argument("--rows", type=int, default=telemetry.FULL_ROWS)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--port", type=int, default=8932)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    name = "tsapi_bench_query"
    url = create_database(args.database_url, name)
    server = None
    results = []
    try:
        started = time.perf_counter()
        points = load(url, args.rows)
        print(f"loaded {points:,} points in {time.perf_counter() - started:.1f} s",
              file=sys.stderr)
        os.environ["TSAPI_AUTH"] = "off"
        server = Server(url, args.redis_url, args.port, None)
        cases = [
            ("week of hourly avg, uncached", False, {
                "metric": "temperature", "start_time": WEEK[0], "end_time": WEEK[1],
                "aggregation": "avg", "interval": "1 hour"}),
            ("week of hourly avg, cached", True, {
                "metric": "temperature", "start_time": WEEK[0], "end_time": WEEK[1],
                "aggregation": "avg", "interval": "1 hour"}),
            ("day raw, all devices", False, {
                "metric": "temperature", "start_time": DAY[0], "end_time": DAY[1]}),
            ("day raw, one device", False, {
                "metric": "temperature", "start_time": DAY[0], "end_time": DAY[1],
                "tags": {"device": DEVICE}}),
        ]
        for label, cached, body in cases:
            base = time_copy(url, baseline_sql(url, body), args.repeat)
            http, rows = time_http(args.port, body, args.repeat, cached)
            rendering = None
            if "aggregation" not in body:
                rendering = p50(time_copy(url, baseline_sql(url, body, True), args.repeat))
            results.append((label, rows, p50(http), p50(base), rendering))

        # A raw export of over a million points, streamed as CSV; watch the worker's RSS.
        body = orjson.dumps({"metrics": ["temperature", "humidity", "carbon_monoxide"],
                             "start_time": "2020-07-01T00:00:00Z",
                             "end_time": "2020-08-01T00:00:00Z", "format": "csv"})
        before = server.rss_mb()
        server.reset_peaks()
        start = time.perf_counter()
        status, data = request(args.port, "POST", "/query", body)
        export_seconds = time.perf_counter() - start
        growth = server.peak_growth_mb(before)
        if status != 200:
            raise SystemExit(f"export failed: {status} {data[:300]!r}")
        export_rows = data.count(b"\n") - 1
    finally:
        if server:
            server.stop()
        if not args.keep:
            drop_database(args.database_url, name)

    print()
    print(f"machine: {os.cpu_count()} cores; {points:,} points stored; "
          f"redis: {'yes' if args.redis_url else 'no'}; p50 of {args.repeat} runs")
    print(f"{'query':32} {'rows':>7} {'tsapi p50 ms':>13} {'COPY p50 ms':>12} {'ratio':>6}"
          f" {'COPY of JSON SELECT':>20} {'ratio':>6}")
    for label, rows, http, base, rendering in results:
        extra = f" {rendering * 1000:20.1f} {http / rendering:6.2f}" if rendering else ""
        print(f"{label:32} {rows:>7} {http * 1000:13.1f} {base * 1000:12.1f} "
              f"{http / base:6.2f}{extra}")
    print("COPY: the rows' SELECT as COPY (…) TO STDOUT; COPY of JSON SELECT: the statement "
          "tsapi runs for raw JSON, which renders the rows in the database")
    print(f"raw CSV export: {export_rows:,} points in {export_seconds:.1f} s, "
          f"worker RSS growth {growth:.0f} MB (goal < 50 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
