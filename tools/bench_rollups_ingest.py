"""The write side of the rollup benchmark: what invalidation logging costs ingest, and whether
the refresher keeps up with ingest at full speed.

    python tools/bench_rollups_ingest.py --help   # against any PostgreSQL you name

- ingest_overhead: 5,000-point batches written in process with and without the log. The
  two modes alternate batch by batch (and swap data sets and order every round), so load
  from elsewhere on the machine falls on both alike.
- refresher_lag: gunicorn with production settings (an API key required, rate limits on)
  and `tsapi rollups run` as processes; clients post current-time 5,000-point batches as
  fast as they can for a while; every second the lag (now minus each level's watermark)
  and the pending invalidations are read. bench_rollups.py runs both after its queries.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tools"), str(ROOT)]

import telemetry  # noqa: E402
from bench_ingest import Server, create_database, drop_database  # noqa: E402

BATCH = 5000
# Production settings: a key on every request, rate limits on but far above what one
# machine can send, so that the limiter's cost is paid and never trips.
PRODUCTION = {"TSAPI_AUTH": "required", "TSAPI_RATE_LIMITS": "on",
              "TSAPI_RATE_LIMIT_READ": "1000000/minute",
              "TSAPI_RATE_LIMIT_WRITE": "1000000/minute",
              "TSAPI_RATE_LIMIT_ADMIN": "1000000/minute"}


def create_token(url: str, name: str = "bench") -> str:
    """A fresh admin key (admin implies read and write) straight in the database."""
    from sqlalchemy import delete

    from tsapi.store.engine import Database
    from tsapi.store.keys import create_key
    from tsapi.store.schema import api_keys

    db = Database(url)
    try:
        with db.engine.begin() as conn:
            conn.execute(delete(api_keys).where(api_keys.c.name == name))
            _, token = create_key(conn, name, {"admin"})
    finally:
        db.dispose()
    return token


def call(port: int, method: str, path: str, body: bytes | None, token: str | None,
         conn: http.client.HTTPConnection | None = None):
    """(status, body, headers) of one request; on `conn` if given, else a new connection."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read(), dict(response.getheaders())
    finally:
        if own:
            conn.close()


def _telemetry_chunks(batches: int, start: datetime):
    from tsapi.formats.validation import validate_points

    points = [p for row in telemetry.generate_rows(batches * 720, 7, start, 2)
              for p in telemetry.row_to_points(row)]
    return [validate_points(points[i:i + BATCH]) for i in range(0, len(points), BATCH)]


def ingest_overhead(url: str, rounds: int, batches: int) -> tuple[float, float, list[float]]:
    """Seconds to write `batches` 5,000-point batches with and without invalidation logging
    (p50 over rounds), and each round's overhead in %. Within a round the modes alternate
    batch by batch on two data sets of the same shape a year apart; points and the log are
    truncated before each round. The rollups' watermarks are at the present, so every
    span is logged: the dearest case, a backfill."""
    from tsapi import create_app
    from tsapi.store import writer

    sets = [_telemetry_chunks(batches, datetime(2022, 1, 1, tzinfo=UTC)),
            _telemetry_chunks(batches, datetime(2023, 1, 1, tzinfo=UTC))]
    app = create_app({"DATABASE_URL": url, "TSAPI_AUTH": "off"})
    db = app.extensions["tsapi"].db
    totals: dict[bool, list[float]] = {True: [], False: []}
    overheads = []
    try:
        for r in range(rounds):
            with db.engine.begin() as conn:
                conn.exec_driver_sql("TRUNCATE points, rollup_invalidations")
            spent = {True: 0.0, False: 0.0}
            for k in range(len(sets[0])):
                order = (True, False) if (k + r) % 2 == 0 else (False, True)
                for logging_on in order:
                    chunk = sets[(logging_on + r) % 2][k]
                    started = time.perf_counter()
                    writer.write_batch(db.engine, chunk, db.series_cache,
                                       log_for_rollups=logging_on)
                    spent[logging_on] += time.perf_counter() - started
            for mode, seconds in spent.items():
                totals[mode].append(seconds)
            overheads.append((spent[True] / spent[False] - 1) * 100)
    finally:
        db.dispose()
    return statistics.median(totals[True]), statistics.median(totals[False]), overheads


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
        chunk = validate_points([p for r in rows for p in telemetry.row_to_points(r)][:BATCH])
        started = time.perf_counter()
        write_batch(db.engine, chunk, db.series_cache)
        ingest.append(time.perf_counter() - started)
        started = time.perf_counter()
        refresh(db.engine, db.storage, timedelta(seconds=30))
        refreshing.append(time.perf_counter() - started)
    db.dispose()
    return statistics.median(ingest), statistics.median(refreshing)


# -- the refresher's lag under ingest at full speed ---------------------------------------

def _template(seed: int) -> list[tuple[float, str, float, dict]]:
    """A batch's points as (seconds into the batch, metric, value, tags): 715 readings over
    ten seconds, seven metrics each."""
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    out = []
    for row in telemetry.generate_rows(715, seed, t0, 10 / 86400):
        for p in telemetry.row_to_points(row):
            offset = (datetime.fromisoformat(p["time"]) - t0).total_seconds()
            out.append((offset, p["metric"], p["value"], p["tags"]))
    return out[:BATCH]


def _ingest_client(port: int, token: str, seed: int, until: float, results) -> None:
    """Post batches of the last ten seconds until the monotonic deadline."""
    template = _template(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    sent, errors = 0, []
    while time.monotonic() < until:
        base = datetime.now(UTC) - timedelta(seconds=10)
        stamps: dict[float, str] = {}
        data = []
        for offset, metric, value, tags in template:
            stamp = stamps.get(offset)
            if stamp is None:
                stamp = stamps[offset] = (base + timedelta(seconds=offset)).isoformat()
            data.append({"time": stamp, "metric": metric, "value": value, "tags": tags})
        status, body, _ = call(port, "POST", "/ingest", orjson.dumps({"data": data}), token,
                               conn)
        if status != 200:
            errors.append(f"{status}: {body[:200]!r}")
            break
        sent += len(data)
    conn.close()
    results.put((sent, errors))


def refresher_lag(url: str, port: int, seconds: float, clients: int,
                  workers: int | None = None) -> dict:
    """Ingest current-time 5,000-point batches from `clients` processes for `seconds`
    through gunicorn (production settings) while `tsapi rollups run` refreshes; sample the
    lag every second. Returns the figures."""
    from tsapi.store.engine import Database
    from tsapi.store.rollup_log import rollup_status

    token = create_token(url)
    env = {**os.environ, "DATABASE_URL": url}
    refresher = subprocess.Popen([str(Path(sys.executable).parent / "tsapi"), "rollups", "run"],
                                 cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
    server = Server(url, None, port, workers, PRODUCTION)
    db = Database(url)
    samples: list[tuple[float, dict, int, float | None]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(1.0):
            with db.engine.connect() as conn:
                status = rollup_status(conn)
            samples.append((time.monotonic(), status.lag_seconds,
                            status.pending_invalidations, status.oldest_pending_seconds))

    try:
        # Let the refresher's first round catch up with whatever came before.
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            with db.engine.connect() as conn:
                status = rollup_status(conn)
            lag = status.lag_seconds.get("1m")
            if lag is not None and lag < 120 and status.pending_invalidations == 0:
                break
            time.sleep(1)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        ctx = multiprocessing.get_context("spawn")
        results = ctx.Queue()
        started = time.monotonic()
        procs = [ctx.Process(target=_ingest_client,
                             args=(port, token, 1000 + c, started + seconds, results))
                 for c in range(clients)]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=seconds + 600) for _ in procs]
        for p in procs:
            p.join()
        elapsed = time.monotonic() - started
        stop.set()
        sampler.join()
    finally:
        stop.set()
        server.stop()
        refresher.send_signal(signal.SIGTERM)
        refresher.wait(timeout=120)
        db.dispose()
    errors = [e for _, errs in outcomes for e in errs]
    if errors:
        raise SystemExit(f"ingest failed during the lag run: {errors[:3]}")
    during = [s for s in samples if s[0] <= started + elapsed]
    minute = [s[1]["1m"] for s in during if s[1].get("1m") is not None]
    hour = [s[1]["1h"] for s in during if s[1].get("1h") is not None]
    oldest = [s[3] or 0.0 for s in during]
    return {
        "seconds": elapsed, "points": sum(n for n, _ in outcomes),
        "rate": sum(n for n, _ in outcomes) / elapsed, "samples": len(during),
        "lag_1m_p50": statistics.median(minute) if minute else None,
        "lag_1m_max": max(minute) if minute else None,
        "lag_1h_max": max(hour) if hour else None,
        "pending_max": max((s[2] for s in during), default=0),
        "oldest_pending_max": max(oldest, default=0.0),
    }


def lag_report(lag: dict, clients: int) -> str:
    return (f"refresher lag while {clients} clients ingested current 5,000-point batches for "
            f"{lag['seconds']:.0f} s ({lag['points']:,} points, {lag['rate']:,.0f} points/s, "
            f"{lag['samples']} samples): 1m level now-watermark p50 "
            f"{lag['lag_1m_p50']:.0f} s, max {lag['lag_1m_max']:.0f} s (the hour level "
            f"max {lag['lag_1h_max']:.0f} s: its buckets close hourly); pending "
            f"invalidations max {lag['pending_max']}, oldest max "
            f"{lag['oldest_pending_max']:.1f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get(
        "DATABASE_URL", "postgresql://postgres@127.0.0.1:55432/postgres"))
    parser.add_argument("--name", default="tsapi_bench_rollups_ingest",
                        help="scratch database to create (and drop afterwards)")
    parser.add_argument("--port", type=int, default=8952)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ingest-batches", type=int, default=40)
    parser.add_argument("--lag-seconds", type=float, default=90,
                        help="how long to ingest for the refresher lag (0: skip it)")
    parser.add_argument("--clients", type=int, default=2)
    args = parser.parse_args()
    url = create_database(args.database_url, args.name)
    try:
        from tsapi.store.engine import Database
        from tsapi.store.rollup_refresh import refresh

        db = Database(url)
        refresh(db.engine, db.storage, timedelta(seconds=30))  # watermarks at the present
        db.dispose()
        with_log, without_log, overheads = ingest_overhead(url, args.rounds,
                                                           args.ingest_batches)
        lag = (refresher_lag(url, args.port, args.lag_seconds, args.clients)
               if args.lag_seconds > 0 else None)
    finally:
        drop_database(args.database_url, args.name)
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    print(ingest_report(args.ingest_batches, with_log, without_log, overheads))
    if lag:
        print(lag_report(lag, args.clients))
    return 0


def ingest_report(batches: int, with_log: float, without_log: float,
                  overheads: list[float]) -> str:
    rounds = ", ".join(f"{o:+.1f}" for o in overheads)
    return (f"ingest of {batches} x 5,000 points: {with_log:.2f} s with invalidation "
            f"logging, {without_log:.2f} s without ({(with_log / without_log - 1) * 100:+.1f} "
            f"%; per round, modes interleaved batch by batch: {rounds} %; p50 "
            f"{statistics.median(overheads):+.1f} %)")


if __name__ == "__main__":
    sys.exit(main())
