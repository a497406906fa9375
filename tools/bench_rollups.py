"""Rollup benchmark: /query through the raw path, through rollups, and InfluxDB 1.x.

    python tools/bench_rollups.py --help   # against any PostgreSQL you name (tools/dev env)

In one run, on the same points: the full synthetic telemetry set (405,184 rows, about 2.8
million points, 3 devices) and one series at a 10 s cadence for a year (3.15 million
points) are stored through tsapi's writer and written to InfluxDB (Debian's `influxdb`
package, `influxd` started here on loopback ports) as line protocol. tsapi serves the same
database twice under gunicorn with production settings (an API key on every request, rate
limits on, set far above what is sent): TSAPI_ROLLUPS=off (the raw path) and on (after one
`tsapi rollups refresh`). For each query it prints the p50 of uncached runs and the ratios,
each request on a new HTTP connection; beside them (--keep-alive, the default), the rollup
server and InfluxDB timed again on one connection kept alive per query and server, as Grafana
sends its queries (measured after all new-connection rounds, so that those see the servers
as before).
Then (tools/bench_rollups_ingest.py) ingest with and without invalidation logging (in
process, the two interleaved batch by batch), the refresh time per 5,000-point batch of
current data beside the time to ingest it, and the refresher's lag (`tsapi rollups run`)
while clients ingest current 5,000-point batches as fast as they can.

Figures are only worth comparing on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import http.client
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
from bench_rollups_ingest import (  # noqa: E402
    PRODUCTION,
    call,
    create_token,
    ingest_overhead,
    ingest_report,
    lag_report,
    refresh_per_batch,
    refresher_lag,
)

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

    def query(self, q: str, conn: http.client.HTTPConnection | None = None) -> int:
        """Rows answered, on `conn` if given, else on a new connection."""
        path = "/query?" + urllib.parse.urlencode({"db": "bench", "q": q, "epoch": "ms"})
        if conn is None:
            status, data = request(self.port, "POST", path)
        else:
            conn.request("POST", path, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            status, data = response.status, response.read()
        if status != 200 or b'"error"' in data:
            raise SystemExit(f"influx query failed: {status} {data[:300]!r}")
        series = orjson.loads(data)["results"][0].get("series", [])
        return sum(len(s["values"]) for s in series)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)


def time_tsapi(port: int, token: str, body: dict, repeat: int,
               keep_alive: bool = False) -> tuple[float, int, str]:
    payload = orjson.dumps(body)
    times, rows, source = [], 0, ""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300) if keep_alive else None
    for _ in range(repeat):
        started = time.perf_counter()
        status, data, headers = call(port, "POST", "/query", payload, token, conn)
        times.append(time.perf_counter() - started)
        if status != 200:
            raise SystemExit(f"/query failed: {status} {data[:300]!r}")
        rows = len(orjson.loads(data))
        source = headers.get("X-Tsapi-Answered-From", "?")
    if conn is not None:
        conn.close()
    return statistics.median(times), rows, source


def time_influx(influx: Influx, q: str, repeat: int,
                keep_alive: bool = False) -> tuple[float, int]:
    times, rows = [], 0
    conn = (http.client.HTTPConnection("127.0.0.1", influx.port, timeout=300) if keep_alive
            else None)
    for _ in range(repeat):
        started = time.perf_counter()
        rows = influx.query(q, conn)
        times.append(time.perf_counter() - started)
    if conn is not None:
        conn.close()
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
    # A day 30 s off the hour: coverage read first, both edges from raw points (dashboards
    # ask "the last 24 hours" at any second).
    start, end = YEAR_START + timedelta(seconds=30), YEAR_START + timedelta(days=1, seconds=30)
    start_text, end_text = (t.isoformat().replace("+00:00", "Z") for t in (start, end))
    out.append(("1 d +30 s 1h mean, one series", {
        "metric": YEAR_METRIC, "start_time": start_text, "end_time": end_text,
        "aggregation": "avg", "interval": "1h"},
        f"SELECT mean(value) FROM {YEAR_METRIC} WHERE time >= '{start_text}' "
        f"AND time < '{end_text}' GROUP BY time(1h)"))
    return out


def print_round(n: int, results: list[tuple], args: argparse.Namespace,
                kept: dict | None = None) -> None:
    print(f"\nround {n}; machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} now; "
          f"p50 of {args.repeat} uncached runs, ms; new connection per request"
          + ("; kept: on one connection kept alive" if kept else ""))
    print(f"{'query':34} {'rows':>6} {'raw':>8} {'rollup':>8} {'from':>10} {'influx':>8} "
          f"{'rollup/raw':>10} {'rollup/influx':>13}"
          + (f" {'kept:rollup':>11} {'influx':>8} {'rollup/influx':>13}" if kept else ""))
    for label, rows, raw, rolled, source, flux, _ in results:
        vs_flux = f"{rolled / flux:13.2f}" if flux else f"{'-':>13}"
        flux_ms = f"{flux * 1000:8.1f}" if flux else f"{'-':>8}"
        line = (f"{label:34} {rows:>6} {raw * 1000:8.1f} {rolled * 1000:8.1f} {source:>10} "
                f"{flux_ms} {rolled / raw:10.3f} {vs_flux}")
        if kept:
            k_rolled, k_flux = kept[label]
            line += (f" {k_rolled * 1000:11.1f} " + (f"{k_flux * 1000:8.1f} "
                     f"{k_rolled / k_flux:13.2f}" if k_flux else f"{'-':>8} {'-':>13}"))
        print(line)
    by_label = {label: (raw, rolled, flux) for label, _, raw, rolled, _, flux, _ in results}
    for interval in ("1h", "1d"):
        one_label = f"1 d {interval} mean, one series"
        longest_label = f"{args.year_days} d {interval} mean, one series"
        one, longest = by_label.get(one_label), by_label.get(longest_label)
        if one and longest and args.year_days > 1:
            flux = (f", InfluxDB {longest[2] / one[2]:.1f}x" if one[2] else "")
            print(f"{args.year_days} d / 1 d, {interval} mean: rollup "
                  f"{longest[1] / one[1]:.1f}x (goal <= 3), raw {longest[0] / one[0]:.1f}x{flux}")
            if kept:
                print(f"  kept alive: rollup {kept[longest_label][0] / kept[one_label][0]:.1f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get(
        "DATABASE_URL", "postgresql://postgres@127.0.0.1:55432/postgres"))
    parser.add_argument("--rows", type=int, default=telemetry.FULL_ROWS)
    parser.add_argument("--year-days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--rounds", type=int, default=1,
                        help="times the whole query table is measured on the same load")
    parser.add_argument("--port", type=int, default=8942)
    parser.add_argument("--ingest-batches", type=int, default=40)
    parser.add_argument("--ingest-rounds", type=int, default=9)
    parser.add_argument("--lag-seconds", type=float, default=90,
                        help="how long to ingest while measuring the refresher's lag (0: skip)")
    parser.add_argument("--clients", type=int, default=2,
                        help="ingesting processes during the lag measurement")
    parser.add_argument("--name", default="tsapi_bench_rollups",
                        help="scratch database to create (and drop afterwards)")
    parser.add_argument("--no-influx", action="store_true")
    parser.add_argument("--redis-url", default=None,
                        help="Redis for the servers' rate limit counters (default: in memory)")
    parser.add_argument("--keep-alive", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the rollup server and InfluxDB on kept-alive "
                             "connections, after the new-connection rounds")
    args = parser.parse_args()

    name = args.name
    url = create_database(args.database_url, name)
    servers, influx, results, kept_results = [], None, [], []
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
        token = create_token(url)
        for port, rollups in ((args.port, "off"), (args.port + 1, "on")):
            # No answer fits the cache (TSAPI_MAX_CACHED_BYTES=1): every run is uncached. Clearing
            # the cache between runs would not do: without Redis each worker has its own.
            servers.append(Server(url, args.redis_url, port, None,
                                  {**PRODUCTION, "TSAPI_ROLLUPS": rollups,
                                   "TSAPI_MAX_CACHED_BYTES": "1"}))
        for _ in range(args.rounds):
            results.append([])
            for label, body, influxql in cases(args.year_days):
                raw, rows, _ = time_tsapi(args.port, token, body, args.repeat)
                rolled, rolled_rows, source = time_tsapi(args.port + 1, token, body,
                                                         args.repeat)
                assert rows == rolled_rows, (label, rows, rolled_rows)
                flux = time_influx(influx, influxql, args.repeat) if influx else (None, None)
                results[-1].append((label, rows, raw, rolled, source, *flux))
            print(f"query round {len(results)} done, load {os.getloadavg()}", file=sys.stderr)
        for _ in range(args.rounds if args.keep_alive else 0):
            kept_results.append({})
            for label, body, influxql in cases(args.year_days):
                rolled = time_tsapi(args.port + 1, token, body, args.repeat, keep_alive=True)[0]
                flux = (time_influx(influx, influxql, args.repeat, keep_alive=True)[0] if influx
                        else None)
                kept_results[-1][label] = (rolled, flux)
            print(f"kept-alive round {len(kept_results)} done, load {os.getloadavg()}",
                  file=sys.stderr)
        for server in servers:
            server.stop()
        servers = []
        with_log, without_log, overheads = ingest_overhead(url, args.ingest_rounds,
                                                           args.ingest_batches)
        ingest_p50, refresh_p50 = refresh_per_batch(url, batches=20)
        lag = (refresher_lag(url, args.port + 2, args.lag_seconds, args.clients)
               if args.lag_seconds > 0 else None)
    finally:
        for server in servers:
            server.stop()
        if influx:
            influx.stop()
        drop_database(args.database_url, name)

    for n, round_results in enumerate(results, 1):
        print_round(n, round_results, args, kept_results[n - 1] if kept_results else None)
    print(ingest_report(args.ingest_batches, with_log, without_log, overheads))
    print(f"per 5,000-point batch of current data: ingest p50 {ingest_p50 * 1000:.0f} ms, "
          f"refresh after it p50 {refresh_p50 * 1000:.0f} ms")
    if lag:
        print(lag_report(lag, args.clients))
    return 0


if __name__ == "__main__":
    sys.exit(main())
