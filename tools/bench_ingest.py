"""Ingest benchmark: tsapi's HTTP ingest against a raw COPY ceiling, in one run.

    tools/dev bench                       # starts the local services, then runs this
    python tools/bench_ingest.py --help   # against any PostgreSQL (+ Redis) you name

It creates a scratch database on the server of --database-url, migrates it, serves tsapi
with gunicorn exactly as gunicorn.conf.py configures production, and measures:
  (a) the ceiling: psycopg2 COPY of the same points into the points table, ids resolved,
      no HTTP, no JSON, no validation, 5,000 points per COPY and commit;
  (b) POST /ingest with JSON batches of 5,000 points, 1 and 2 concurrent clients;
  (c) the same with 50-point batches;
  (d) POST /api/v2/write with the points of (b) as InfluxDB line protocol, one line per
      reading (measurement "tsapi", so the metrics are the same), 1 and 2 clients;
plus re-sending batches that already exist (the upsert path) and the worker RSS growth
while one 100,000-point batch is ingested. Every run's stored point count is checked.
"""

from __future__ import annotations

import argparse
import http.client
import io
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import telemetry  # noqa: E402

from tsapi.formats.validation import validate_points  # noqa: E402
from tsapi.services.line_protocol_write import line_protocol_batch  # noqa: E402

NEW_SERIES_EVERY = 97  # one row in 97 carries a device never seen before: new series mid-run


def make_points(rows: int, label: str) -> list[dict]:
    """Telemetry points; a few rows get a fresh device tag so runs create series as they go."""
    points = []
    for i, row in enumerate(telemetry.generate_rows(rows, telemetry.DEFAULT_SEED,
                                                    telemetry.DEFAULT_START, 8)):
        if i % NEW_SERIES_EVERY == 0:
            row = row._replace(device=f"{label}-device-{i // NEW_SERIES_EVERY}")
        points.extend(telemetry.row_to_points(row))
    return points


def batches(points: list[dict], size: int) -> list[list[dict]]:
    return [points[i:i + size] for i in range(0, len(points), size)]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def line_protocol(chunk: list[dict]) -> bytes:
    """The chunk's points as line protocol: one line per (time, device), ns timestamps."""
    readings: dict[tuple[str, str], list[str]] = {}
    for p in chunk:
        readings.setdefault((p["time"], p["tags"]["device"]), []).append(
            f"{p['metric']}={p['value']!r}")
    lines = []
    for (stamp, device), fields in readings.items():
        ns = (datetime.fromisoformat(stamp) - _EPOCH) // timedelta(microseconds=1) * 1000
        lines.append(f"tsapi,device={device} {','.join(fields)} {ns}\n")
    return "".join(lines).encode()


# -- the database -------------------------------------------------------------------------
def dsn(url: str, dbname: str | None = None) -> str:
    parts = urlsplit(url.replace("+psycopg2", ""))
    name = dbname or parts.path.lstrip("/") or "postgres"
    auth = f"user={parts.username} " if parts.username else ""
    if parts.password:
        auth += f"password={parts.password} "
    return f"host={parts.hostname} port={parts.port or 5432} {auth}dbname={name}"


def sqlalchemy_url(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    scheme = "postgresql+psycopg2"
    return f"{scheme}://{parts.netloc}/{dbname}"


def create_database(admin_url: str, name: str) -> str:
    conn = psycopg2.connect(dsn(admin_url))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    url = sqlalchemy_url(admin_url, name)
    # The `tsapi` command beside this interpreter (tsapi.cli is a package with no __main__).
    subprocess.run([str(Path(sys.executable).parent / "tsapi"), "db", "upgrade"], check=True,
                   env={**os.environ, "DATABASE_URL": url}, cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return url


def drop_database(admin_url: str, name: str) -> None:
    conn = psycopg2.connect(dsn(admin_url))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


def count_points(url: str) -> int:
    with psycopg2.connect(dsn(url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM points")
        return cur.fetchone()[0]


def truncate_points(url: str) -> None:
    # Series and metrics stay, so the server's id caches stay valid.
    with psycopg2.connect(dsn(url)) as conn, conn.cursor() as cur:
        cur.execute("TRUNCATE points")


def unique_points(points: list[dict]) -> int:
    return len({(p["metric"], p["tags"]["device"], p["time"]) for p in points})


def copy_ceiling(url: str, points: list[dict], size: int) -> float:
    """Seconds to COPY the points in batches with ids resolved beforehand (not timed)."""
    conn = psycopg2.connect(dsn(url))
    cur = conn.cursor()
    kinds = {}
    for p in points:
        kinds.setdefault(p["metric"], "number")
    cur.executemany(
        "INSERT INTO metrics (name, value_type) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        list(kinds.items()),
    )
    cur.execute("SELECT id, name FROM metrics")
    metric_ids = {name: mid for mid, name in cur.fetchall()}
    pairs = sorted({(metric_ids[p["metric"]], p["tags"]["device"]) for p in points})
    cur.executemany(
        "INSERT INTO series (metric_id, tags) VALUES (%s, jsonb_build_object('device', %s)) "
        "ON CONFLICT DO NOTHING", pairs,
    )
    cur.execute("SELECT id, metric_id, tags->>'device' FROM series")
    series_ids = {(mid, dev): sid for sid, mid, dev in cur.fetchall()}
    conn.commit()
    buffers = []
    for chunk in batches(points, size):
        lines = {}
        for p in chunk:
            sid = series_ids[(metric_ids[p["metric"]], p["tags"]["device"])]
            lines[(sid, p["time"])] = f"{p['time']}\t{sid}\t{p['value']!r}\t\\N\n"
        buffers.append("".join(lines.values()).encode())
    start = time.perf_counter()
    for buf in buffers:
        cur.copy_expert("COPY points (time, series_id, value_num, value_text) FROM STDIN",
                        io.BytesIO(buf), size=1 << 20)
        conn.commit()
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


# -- the server ---------------------------------------------------------------------------
class Server:
    """gunicorn serving wsgi:app with the repository's gunicorn.conf.py."""

    def __init__(self, database_url: str, redis_url: str | None, port: int, workers: int | None,
                 settings: dict[str, str] | None = None):
        # Auth and rate limits off unless `settings` say otherwise: this measures the write
        # path, on 127.0.0.1 only.
        env = {**os.environ, "DATABASE_URL": database_url, "GUNICORN_ACCESS_LOG": "",
               "GUNICORN_LOG_LEVEL": "warning", "TSAPI_AUTH": "off", "TSAPI_RATE_LIMITS": "off",
               **(settings or {})}
        env.pop("REDIS_URL", None)
        if redis_url:
            env["REDIS_URL"] = redis_url
        if workers:
            env["GUNICORN_WORKERS"] = str(workers)
        gunicorn = Path(sys.executable).parent / "gunicorn"
        self.port = port
        self.proc = subprocess.Popen(
            [str(gunicorn), "wsgi:app", "-c", "gunicorn.conf.py", "--bind",
             f"127.0.0.1:{port}"], cwd=ROOT, env=env,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                status, _ = request(port, "GET", "/health")
                if status == 200 and len(self.workers()) >= (workers or 1):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("gunicorn did not come up; see its output above")

    def workers(self) -> list[int]:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in children.read_text().split()] if children.exists() else []

    def rss_mb(self) -> dict[int, float]:
        return {pid: _status_kb(pid, "VmRSS") / 1024 for pid in self.workers()}

    def reset_peaks(self) -> None:
        for pid in self.workers():
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to VmRSS

    def peak_mb(self) -> dict[int, float]:
        return {pid: _status_kb(pid, "VmHWM") / 1024 for pid in self.workers()}

    def peak_growth_mb(self, before: dict[int, float]) -> float:
        """The largest growth of any worker's peak RSS since `before` (from rss_mb)."""
        peaks = self.peak_mb()
        return max(peaks[pid] - before.get(pid, peaks[pid]) for pid in peaks)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def request(port: int, method: str, path: str, body: bytes | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


LINE_PROTOCOL = ("/api/v2/write?bucket=bench&precision=ns", "text/plain", 204)
JSON = ("/ingest", "application/json", 200)


def _client(port: int, bodies: list[bytes], barrier, results, how=JSON) -> None:
    path, content_type, ok = how
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    latencies = []
    barrier.wait()
    for body in bodies:
        start = time.perf_counter()
        conn.request("POST", path, body=body, headers={"Content-Type": content_type})
        response = conn.getresponse()
        payload = response.read()
        latencies.append(time.perf_counter() - start)
        if response.status != ok:
            results.put(("error", f"{response.status}: {payload[:300]!r}"))
            return
    results.put(("ok", latencies))


def http_ingest(port: int, chunks: list[list[dict]], clients: int, how=JSON
                ) -> tuple[float, list[float]]:
    """Wall seconds for `clients` processes to send all chunks, and every request latency."""
    if how is LINE_PROTOCOL:
        bodies = [line_protocol(chunk) for chunk in chunks]
    else:
        bodies = [orjson.dumps({"data": chunk}) for chunk in chunks]
    ctx = mp.get_context("fork")
    barrier, results = ctx.Barrier(clients + 1), ctx.Queue()
    procs = [ctx.Process(target=_client, args=(port, bodies[i::clients], barrier, results, how))
             for i in range(clients)]
    for p in procs:
        p.start()
    barrier.wait()
    start = time.perf_counter()
    latencies = []
    for _ in procs:
        kind, value = results.get()
        if kind == "error":
            raise RuntimeError(f"ingest failed: {value}")
        latencies.extend(value)
    elapsed = time.perf_counter() - start
    for p in procs:
        p.join()
    return elapsed, latencies


def decode_rates(points: list[dict], size: int) -> tuple[float, float]:
    """Points/s of the server's CPU work alone, body to checked batch, best of 3:
    JSON (orjson, then the validator) and line protocol (the parser, then the mapping)."""
    chunks = batches(points, size)
    json_bodies = [orjson.dumps({"data": chunk}) for chunk in chunks]
    lp_bodies = [line_protocol(chunk) for chunk in chunks]

    def best(decode, bodies) -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            for body in bodies:
                decode(body)
            times.append(time.perf_counter() - start)
        return len(points) / min(times)

    return (best(lambda b: validate_points(orjson.loads(b)["data"]), json_bodies),
            best(lambda b: line_protocol_batch(b.decode(), "ns"), lp_bodies))


# -- the report ---------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 \
        else values[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get(
        "DATABASE_URL", "postgresql://postgres@127.0.0.1:55432/postgres"),
        help="any database on the server to use; a scratch database is created beside it")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"),
                        help="Redis for the server's cache, as in production (optional)")
    parser.add_argument("--rows", type=int, default=30_000,
                        help="telemetry rows per run (7 points each; default %(default)s)")
    parser.add_argument("--small-rows", type=int, default=3_000,
                        help="rows for the 50-point-batch runs (default %(default)s)")
    parser.add_argument("--workers", type=int, default=None,
                        help="gunicorn workers (default: gunicorn.conf.py's choice)")
    parser.add_argument("--port", type=int, default=8931)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    name = "tsapi_bench"
    url = create_database(args.database_url, name)
    server = None
    rows_out = []
    try:
        label_n = iter(range(1000))

        def data(rows):
            return make_points(rows, f"run{next(label_n)}")

        # (a) the ceiling
        points = data(args.rows)
        seconds = copy_ceiling(url, points, 5000)
        expected = unique_points(points)
        assert count_points(url) == expected, "ceiling COPY stored a wrong count"
        ceiling = len(points) / seconds
        rows_out.append(("(a) COPY ceiling", "-", 5000, len(points), seconds, None, ceiling))
        truncate_points(url)

        server = Server(url, args.redis_url, args.port, args.workers)
        for label, size, clients, rows, how in (
            ("(b) HTTP ingest", 5000, 1, args.rows, JSON),
            ("(d) line protocol", 5000, 1, args.rows, LINE_PROTOCOL),
            ("(b) HTTP ingest", 5000, 2, args.rows, JSON),
            ("(d) line protocol", 5000, 2, args.rows, LINE_PROTOCOL),
            ("(c) HTTP ingest", 50, 1, args.small_rows, JSON),
            ("(c) HTTP ingest", 50, 2, args.small_rows, JSON),
            ("(c) HTTP ingest", 50, 4, args.small_rows, JSON),
        ):
            points = data(rows)
            seconds, latencies = http_ingest(args.port, batches(points, size), clients, how)
            stored = count_points(url)
            if stored != unique_points(points):
                raise SystemExit(f"{label}: stored {stored} points, sent "
                                 f"{unique_points(points)} distinct ones")
            rows_out.append((label, clients, size, len(points), seconds, latencies,
                             len(points) / seconds))
            if size == 5000 and clients == 2 and how is JSON:
                # Send the same batches again: every point conflicts, so the upsert runs.
                seconds, latencies = http_ingest(args.port, batches(points, size), clients)
                assert count_points(url) == stored, "re-sent points were duplicated"
                rows_out.append(("(b') re-send, upsert", clients, size, len(points), seconds,
                                 latencies, len(points) / seconds))
            truncate_points(url)

        # Worker memory while one 100,000-point batch is ingested.
        points = data(100_000 // 7 + 1)[:100_000]
        body = orjson.dumps({"data": points})
        before = server.rss_mb()
        server.reset_peaks()
        status, payload = request(args.port, "POST", "/ingest", body)
        if status != 200:
            raise SystemExit(f"100k batch failed: {status} {payload[:300]!r}")
        growth = server.peak_growth_mb(before)
        json_cpu, lp_cpu = decode_rates(data(args.rows), 5000)
    finally:
        if server:
            server.stop()
        if not args.keep:
            drop_database(args.database_url, name)

    print()
    print(f"machine: {os.cpu_count()} cores; server: gunicorn.conf.py"
          f"{f' with {args.workers} workers' if args.workers else ''}; "
          f"redis: {'yes' if args.redis_url else 'no'}")
    print(f"{'run':24} {'clients':>7} {'batch':>6} {'points':>8} {'seconds':>8} "
          f"{'points/s':>10} {'p50 ms':>8} {'p95 ms':>8} {'/ ceiling':>9}")
    for label, clients, size, n, seconds, latencies, rate in rows_out:
        p50 = f"{percentile(latencies, 50) * 1000:8.1f}" if latencies else f"{'-':>8}"
        p95 = f"{percentile(latencies, 95) * 1000:8.1f}" if latencies else f"{'-':>8}"
        print(f"{label:24} {clients!s:>7} {size:>6} {n:>8} {seconds:8.2f} {rate:>10,.0f} "
              f"{p50} {p95} {rate / ceiling:9.2f}")
    print(f"worker RSS growth while ingesting one 100,000-point batch: {growth:.0f} MB "
          f"(goal < 150 MB)")
    print(f"body to checked batch, CPU only (no HTTP, no database): JSON {json_cpu:,.0f} "
          f"points/s, line protocol {lp_cpu:,.0f} points/s")
    print("stored point counts matched what was sent in every run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
