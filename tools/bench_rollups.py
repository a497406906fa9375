"""Rollup benchmark: /query through the raw path, through rollups, and InfluxDB 1.x.

    python tools/bench_rollups.py --help   # against any PostgreSQL you name (tools/dev env)

In one run, on the same points: the full synthetic telemetry set (405,184 rows, about 2.8
million points, 3 devices) and one series at a 10 s cadence for a year (3.15 million
points) are stored through tsapi's writer and written to InfluxDB (Debian's `influxdb`
package, `influxd` started here on loopback ports) as line protocol. tsapi serves the same
database twice under gunicorn: TSAPI_ROLLUPS=off (the raw path) and on (after one
`tsapi rollups refresh`). For each query it prints the p50 of uncached runs and the ratios.
Then ingest with and without invalidation logging (in process, alternating rounds), and the
refresh time per 5,000-point batch of current data beside the time to ingest it.

Figures are only worth comparing on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tools"), str(ROOT)]

import telemetry  # noqa: E402
from bench_ingest import Server, create_database, drop_database, dsn, request  # noqa: E402
from bench_query import load  # noqa: E402

SPAN = ("2020-07-12T00:00:00Z", "2020-07-20T00:00:00Z")
YEAR_START = datetime(2021, 1, 1, tzinfo=UTC)
YEAR_METRIC = "year_temp"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
INFLUX_CONFIG = """reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{root}/meta"
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
[continuous_queries]
  enabled = false
"""


def year_points(days: int) -> list[dict]:
    """One series, one point every 10 s: a slow daily cycle with a little noise."""
    points = []
    for i in range(days * 8640):
        t = YEAR_START + timedelta(seconds=10 * i)
        value = 20 + 5 * ((i % 8640) / 8640 - 0.5) ** 2 + (i * 7919 % 101) / 100
        points.append({"time": t.isoformat(), "metric": YEAR_METRIC, "value": value,
                       "tags": {"device": "solo"}})
    return points


def store_points(url: str, points: list[dict]) -> None:
    from tsapi import create_app
    from tsapi.formats.validation import validate_points
    from tsapi.store.writer import write_batch

    app = create_app({"DATABASE_URL": url, "TSAPI_AUTH": "off"})
    db = app.extensions["tsapi"].db
    for i in range(0, len(points), 100_000):
        write_batch(db.engine, validate_points(points[i:i + 100_000]), db.series_cache)
    db.dispose()


def refresh_rollups(url: str) -> float:
    from tsapi.store.engine import Database
    from tsapi.store.rollup_refresh import refresh

    db = Database(url)
    started = time.perf_counter()
    refresh(db.engine, db.storage, timedelta(seconds=30))
    took = time.perf_counter() - started
    db.dispose()
    with psycopg2.connect(dsn(url)) as conn, conn.cursor() as cur:
        cur.execute("ANALYZE")
    return took


class Influx:
    """influxd with its data in a scratch directory, on loopback ports."""

    def __init__(self, port: int):
        self.port = port
        self.root = tempfile.mkdtemp(prefix="tsapi-bench-influx-")
        config = Path(self.root) / "influxdb.conf"
        config.write_text(INFLUX_CONFIG.format(root=self.root, port=port, rpc=port + 1))
        self.proc = subprocess.Popen(["influxd", "-config", str(config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if request(port, "GET", "/ping")[0] == 204:
                    break
            except OSError:
                time.sleep(0.2)
        else:
            self.stop()
            raise RuntimeError("influxd did not come up")
        self.query("CREATE DATABASE bench")

    def write(self, points: list[dict]) -> None:
        for i in range(0, len(points), 5000):
            lines = []
            for p in points[i:i + 5000]:
                us = (datetime.fromisoformat(p["time"]) - EPOCH) // timedelta(microseconds=1)
                lines.append(f"{p['metric']},device={p['tags']['device']} "
                             f"value={float(p['value'])!r} {us}")
            status, data = request(self.port, "POST", "/write?db=bench&precision=u",
                                   "\n".join(lines).encode())
            if status != 204:
                raise SystemExit(f"influx write failed: {status} {data[:300]!r}")

    def query(self, q: str) -> int:
        path = "/query?" + urllib.parse.urlencode({"db": "bench", "q": q, "epoch": "ms"})
        status, data = request(self.port, "POST", path)
        if status != 200 or b'"error"' in data:
            raise SystemExit(f"influx query failed: {status} {data[:300]!r}")
        series = orjson.loads(data)["results"][0].get("series", [])
        return sum(len(s["values"]) for s in series)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)


def time_tsapi(port: int, body: dict, repeat: int) -> tuple[float, int, str]:
    payload = orjson.dumps(body)
    times, rows, source = [], 0, ""
    for _ in range(repeat):
        request(port, "POST", f"/cache/metrics/{body['metric']}/clear")
        started = time.perf_counter()
        status, data = request(port, "POST", "/query", payload)
        times.append(time.perf_counter() - started)
        if status != 200:
            raise SystemExit(f"/query failed: {status} {data[:300]!r}")
        rows = len(orjson.loads(data))
    # The header, once more outside the timing (bench_ingest.request drops headers).
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    conn.request("POST", "/query", body=payload, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    source = response.getheader("X-Tsapi-Answered-From", "?")
    conn.close()
    return statistics.median(times), rows, source


def time_influx(influx: Influx, q: str, repeat: int) -> tuple[float, int]:
    times, rows = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        rows = influx.query(q)
        times.append(time.perf_counter() - started)
    return statistics.median(times), rows


def cases(year_days: int) -> list[tuple[str, dict, str]]:
    """(label, /query body, InfluxQL) for every aggregate query compared."""
    where = f"time >= '{SPAN[0]}' AND time < '{SPAN[1]}'"
    out = [
        ("8 days hourly mean", {"metric": "temperature", "start_time": SPAN[0],
                                "end_time": SPAN[1], "aggregation": "avg", "interval": "1h"},
         f"SELECT mean(value) FROM temperature WHERE {where} GROUP BY time(1h)"),
        ("8 days hourly mean per device", {
            "metric": "temperature", "start_time": SPAN[0], "end_time": SPAN[1],
            "aggregation": "avg", "interval": "1h", "group_by": ["device"]},
         f"SELECT mean(value) FROM temperature WHERE {where} GROUP BY time(1h), device"),
    ]
    for days in sorted({1, min(30, year_days), year_days}):
        end = (YEAR_START + timedelta(days=days)).isoformat().replace("+00:00", "Z")
        start = YEAR_START.isoformat().replace("+00:00", "Z")
        for interval in ("1h", "1d"):
            out.append((f"{days} d {interval} mean, one series", {
                "metric": YEAR_METRIC, "start_time": start, "end_time": end,
                "aggregation": "avg", "interval": interval},
                f"SELECT mean(value) FROM {YEAR_METRIC} WHERE time >= '{start}' "
                f"AND time < '{end}' GROUP BY time({interval})"))
    return out


def ingest_overhead(url: str, rounds: int, batches: int) -> tuple[float, float]:
    """Seconds to write `batches` 5,000-point batches, with and without invalidation
    logging (p50 over alternating rounds, points truncated before each)."""
    from tsapi import create_app
    from tsapi.formats.validation import validate_points
    from tsapi.store import writer

    points = [p for row in telemetry.generate_rows(batches * 720, 7, datetime(2022, 1, 1,
                                                                           tzinfo=UTC), 2)
              for p in telemetry.row_to_points(row)]
    chunks = [validate_points(points[i:i + 5000]) for i in range(0, len(points), 5000)]
    app = create_app({"DATABASE_URL": url, "TSAPI_AUTH": "off"})
    db = app.extensions["tsapi"].db
    timings: dict[bool, list[float]] = {True: [], False: []}
    try:
        for _ in range(rounds):
            for logging_on in (True, False):
                with db.engine.begin() as conn:
                    conn.exec_driver_sql("TRUNCATE points, rollup_invalidations")
                started = time.perf_counter()
                for chunk in chunks:
                    writer.write_batch(db.engine, chunk, db.series_cache,
                                       log_for_rollups=logging_on)
                timings[logging_on].append(time.perf_counter() - started)
    finally:
        db.dispose()
    return statistics.median(timings[True]), statistics.median(timings[False])


def refresh_per_batch(url: str, batches: int) -> tuple[float, float]:
    """p50 seconds to ingest a 5,000-point batch of the last minutes, and to refresh after."""
    from tsapi import create_app
    from tsapi.formats.validation import validate_points
    from tsapi.store.rollup_refresh import refresh
    from tsapi.store.writer import write_batch

    app = create_app({"DATABASE_URL": url, "TSAPI_AUTH": "off"})
    db = app.extensions["tsapi"].db
    ingest, refreshing = [], []
    start = datetime.now(UTC) - timedelta(minutes=10)
    for b in range(batches):
        rows = telemetry.generate_rows(720, b, start + timedelta(minutes=b), 1 / 144)
        chunk = validate_points([p for r in rows for p in telemetry.row_to_points(r)][:5000])
        started = time.perf_counter()
        write_batch(db.engine, chunk, db.series_cache)
        ingest.append(time.perf_counter() - started)
        started = time.perf_counter()
        refresh(db.engine, db.storage, timedelta(seconds=30))
        refreshing.append(time.perf_counter() - started)
    db.dispose()
    return statistics.median(ingest), statistics.median(refreshing)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get(
        "DATABASE_URL", "postgresql://postgres@127.0.0.1:55432/postgres"))
    parser.add_argument("--rows", type=int, default=telemetry.FULL_ROWS)
    parser.add_argument("--year-days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--port", type=int, default=8942)
    parser.add_argument("--ingest-batches", type=int, default=40)
    parser.add_argument("--no-influx", action="store_true")
    args = parser.parse_args()

    name = "tsapi_bench_rollups"
    url = create_database(args.database_url, name)
    servers, influx, results = [], None, []
    try:
        loaded = load(url, args.rows)
        year = year_points(args.year_days)
        store_points(url, year)
        refresh_seconds = refresh_rollups(url)
        print(f"stored {loaded + len(year):,} points; first refresh {refresh_seconds:.1f} s",
              file=sys.stderr)
        if not args.no_influx:
            influx = Influx(args.port + 10)
            influx.write([p for row in telemetry.generate_rows(
                args.rows, telemetry.DEFAULT_SEED, telemetry.DEFAULT_START,
                telemetry.DEFAULT_DAYS) for p in telemetry.row_to_points(row)])
            influx.write(year)
        for port, rollups in ((args.port, "off"), (args.port + 1, "on")):
            os.environ["TSAPI_ROLLUPS"] = rollups
            servers.append(Server(url, None, port, None))
        for label, body, influxql in cases(args.year_days):
            raw, rows, _ = time_tsapi(args.port, body, args.repeat)
            rolled, rolled_rows, source = time_tsapi(args.port + 1, body, args.repeat)
            assert rows == rolled_rows, (label, rows, rolled_rows)
            flux = time_influx(influx, influxql, args.repeat) if influx else (None, None)
            results.append((label, rows, raw, rolled, source, *flux))
        for server in servers:
            server.stop()
        servers = []
        with_log, without_log = ingest_overhead(url, rounds=3, batches=args.ingest_batches)
        ingest_p50, refresh_p50 = refresh_per_batch(url, batches=20)
    finally:
        for server in servers:
            server.stop()
        if influx:
            influx.stop()
        drop_database(args.database_url, name)

    print(f"\nmachine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
          f"p50 of {args.repeat} uncached runs, ms")
    print(f"{'query':34} {'rows':>6} {'raw':>8} {'rollup':>8} {'from':>10} {'influx':>8} "
          f"{'rollup/raw':>10} {'rollup/influx':>13}")
    for label, rows, raw, rolled, source, flux, _ in results:
        vs_flux = f"{rolled / flux:13.2f}" if flux else f"{'-':>13}"
        flux_ms = f"{flux * 1000:8.1f}" if flux else f"{'-':>8}"
        print(f"{label:34} {rows:>6} {raw * 1000:8.1f} {rolled * 1000:8.1f} {source:>10} "
              f"{flux_ms} {rolled / raw:10.3f} {vs_flux}")
    overhead = (with_log / without_log - 1) * 100
    print(f"ingest of {args.ingest_batches} x 5,000 points: {with_log:.2f} s with "
          f"invalidation logging, {without_log:.2f} s without ({overhead:+.1f} %)")
    print(f"per 5,000-point batch of current data: ingest p50 {ingest_p50 * 1000:.0f} ms, "
          f"refresh after it p50 {refresh_p50 * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
