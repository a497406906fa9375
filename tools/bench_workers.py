"""gunicorn worker models side by side: mixed traffic and the fleet, models alternated in one run.

    .venv/bin/python tools/bench_workers.py                       # the default models, 2 rounds
    .venv/bin/python tools/bench_workers.py --model sync:4 --model gthread:4x2 --rounds 3
    .venv/bin/python tools/bench_workers.py --skip fleet --mixed-seconds 15

Every model is served at once (same code, database, Redis and settings as tools/bench_small.py:
production settings, durable PostgreSQL, gunicorn.conf.py), and each round runs section (5)
(mixed traffic) then (6) (the fleet) of bench_small on every model in turn, in an order that
rotates each round, so drift and other work on the machine hit each alike. A model is
`sync:W` (gunicorn's sync worker, W processes), `gthread:WxT` (gunicorn's gthread worker, W
processes, T threads each) or `tsapi:WxT` (gunicorn.conf.py's worker, tsapi.api.worker's),
then any of `/si=SECONDS` (the workers' GIL switch interval, sys.setswitchinterval: 5 ms by
default, how long a thread that wants the GIL waits before the holder is asked to let go),
`/wc=N` (gunicorn's worker_connections: connections a gthread worker holds at once, kept-alive
ones included) and `/ka=SECONDS` (keepalive), set by a gunicorn.conf.py that runs this tree's.

Beside each client-side latency it prints the server's own time for the request (the access
log's duration_ms: from the first before_request hook to the last after_request hook) at the
same percentile: the difference is time spent outside the app (gunicorn's accept and dispatch,
waits for the GIL before the first hook and after the last, the loopback), per kind of request.
The load average is printed with every figure; medians and spreads over the rounds at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))

import bench_ingest as bi  # noqa: E402
import bench_small as bs  # noqa: E402
from bench_servers import App, make_key, print_server_errors, stop_servers  # noqa: E402
from services import PostgresServer, RedisServer  # noqa: E402

DEFAULT_MODELS = ("tsapi:2x4", "gthread:2x4", "tsapi:4x2")
# Threaded models: gunicorn's gthread worker, or tsapi's (gunicorn.conf.py's: read deadlines,
# and a new connection left to the worker holding the fewest).
WORKER_CLASSES = {"gthread": "gthread", "tsapi": "tsapi.api.worker.DeadlineThreadWorker"}


SETTINGS = {"si": "GIL switch interval, seconds", "wc": "worker_connections",
            "ka": "keepalive, seconds"}


def parse_model(text: str) -> dict:
    model, *options = text.split("/")
    kind, _, shape = model.partition(":")
    try:
        extra = {}
        for option in options:
            name, _, value = option.partition("=")
            if name not in SETTINGS:
                raise ValueError(name)
            extra[name] = float(value) if name == "si" else int(value)
        if kind == "sync":
            return {"worker_class": "sync", "workers": int(shape), "threads": 1, **extra}
        if kind in WORKER_CLASSES:
            workers, _, threads = shape.partition("x")
            return {"worker_class": WORKER_CLASSES[kind], "workers": int(workers),
                    "threads": int(threads), "kind": kind, **extra}
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(
        f"a model is sync:W, gthread:WxT or tsapi:WxT, then /NAME=VALUE for any of {SETTINGS}; "
        f"got {text!r}")


def label(model: dict) -> str:
    shape = (f"sync {model['workers']}" if model["worker_class"] == "sync"
             else f"{model['kind']} {model['workers']}x{model['threads']}")
    return shape + "".join(f" {k}={model[k]:g}" for k in SETTINGS if k in model)


def model_conf(base: Path, model: dict) -> Path | None:
    """None, or a directory whose gunicorn.conf.py runs this tree's, then sets the model's
    extra settings (the GIL switch interval in a post_worker_init hook)."""
    if not any(k in model for k in SETTINGS):
        return None
    conf_dir = Path(tempfile.mkdtemp(prefix="conf-", dir=base))
    lines = [f"exec(open({str(ROOT / 'gunicorn.conf.py')!r}).read())"]
    if "wc" in model:
        lines.append(f"worker_connections = {model['wc']!r}")
    if "ka" in model:
        lines.append(f"keepalive = {model['ka']!r}")
    if "si" in model:
        lines += ["def post_worker_init(worker):", "    import sys",
                  f"    sys.setswitchinterval({model['si']!r})"]
    (conf_dir / "gunicorn.conf.py").write_text("\n".join(lines) + "\n")
    return conf_dir


class AccessLog:
    """The access lines an app wrote since the last read: (method path, duration seconds)."""

    def __init__(self, app: App):
        self.path = app.log
        self.offset = self.path.stat().st_size

    def since(self) -> dict[str, list[float]]:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += data.rfind(b"\n") + 1  # a line being written is read next time
        out: dict[str, list[float]] = {}
        for line in data[:data.rfind(b"\n") + 1].splitlines():
            if b'"tsapi.access"' not in line:
                continue
            entry = orjson.loads(line)
            if entry.get("duration_ms") is not None:
                out.setdefault(f"{entry['method']} {entry['path']}", []).append(
                    entry["duration_ms"] / 1000)
        return out


MIXED_PATHS = {"query": "POST /query", "metrics": "GET /metrics"}  # writes share /ingest


def run_mixed(app: App, log: AccessLog, token: str, seconds: float, cached: bool) -> dict:
    log.since()
    elapsed, times = bs.mixed(app.port, token, 4, seconds, cached)
    server = log.since()
    row = {"rate": sum(len(v) for v in times.values()) / elapsed, "load": os.getloadavg()[0]}
    for kind, values in times.items():
        row[kind] = (bs.pct(values, 50), bs.pct(values, 99))
        path = MIXED_PATHS.get(kind)
        if path and server.get(path):
            row[kind + " (server)"] = (bs.pct(server[path], 50), bs.pct(server[path], 99))
    writes = server.get("POST /ingest")
    if writes:
        row["writes (server)"] = (bs.pct(writes, 50), bs.pct(writes, 99))
    return row


def connections_per_worker(port: int) -> list[int]:
    """How many client connections each worker process holds now, most first (ss -p)."""
    found = subprocess.run(["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
                           capture_output=True, text=True).stdout
    pids = Counter(re.findall(r"pid=(\d+)", found))
    return sorted(pids.values(), reverse=True)


def run_fleet(app: App, log: AccessLog, token: str, args) -> dict:
    bi.truncate_points(app.url)
    log.since()
    samples: list[list[int]] = []
    sampler = threading.Timer(2.0 + args.fleet_seconds / 2,
                              lambda: samples.append(connections_per_worker(app.port)))
    sampler.start()
    out = bs.fleet(app.port, token, args.devices, args.fleet_seconds, 10.0,
                   args.fleet_processes, args.fleet_threads)
    sampler.cancel()
    server = log.since().get("POST /ingest") or [0.0]
    sent = out["sent"]
    stored, total = bs.fleet_stored(app.url)
    expected = sum(bs.fleet_value(d, r, k) for d, r in sent for k in range(bs.FLEET_FIELDS))
    once = (stored == len(sent) * bs.FLEET_FIELDS and abs(total - expected) < 1e-6
            and len(set(sent)) == len(sent))
    lat = out["latency"] or [0.0]
    return {"p50": bs.pct(lat, 50), "p99": bs.pct(lat, 99), "max": max(lat) * 1000,
            "server p50": bs.pct(server, 50), "server p99": bs.pct(server, 99),
            "sent": len(sent), "expected": args.devices * out["rounds"],
            "errors": len(out["errors"]), "skipped": len(out["skipped"]), "once": once,
            "spread": samples[0] if samples else [],
            "load": os.getloadavg()[0]}


def fmt(pair: tuple[float, float]) -> str:
    return f"{pair[0]:.1f}/{pair[1]:.1f}"


def spread(values: list[float]) -> str:
    return (f"median {statistics.median(values):.1f} "
            f"(min {min(values):.1f}, max {max(values):.1f}, n={len(values)})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", type=parse_model,
                        help=f"sync:W, gthread:WxT or tsapi:WxT (repeatable; default "
                        f"{DEFAULT_MODELS})")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--mixed-seconds", type=float, default=10.0)
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--fleet-seconds", type=float, default=60.0)
    parser.add_argument("--fleet-processes", type=int, default=4)
    parser.add_argument("--fleet-threads", type=int, default=16)
    parser.add_argument("--skip", action="append", default=[], choices=("mixed", "fleet"))
    args = parser.parse_args()
    models = args.model or [parse_model(m) for m in DEFAULT_MODELS]

    started = time.time()
    print(f"load average at start: {bs.load_average()} ({os.cpu_count()} cores)", flush=True)
    base = Path(tempfile.mkdtemp(prefix="tsapi-bench-workers-"))
    pg = PostgresServer(base_dir=base, extra_conf=bs.DURABLE)
    redis = RedisServer(base_dir=base)
    apps: list[App] = []
    mixed_rows: dict[str, list[dict]] = {}
    fleet_rows: dict[str, list[dict]] = {}
    try:
        pg.start()
        redis.start()
        url = bi.create_database(pg.url(), "tsapi_bench_workers")
        token = make_key(url)
        for m in models:
            apps.append(App(label(m), ROOT, url, redis.url(), conf_dir=model_conf(base, m),
                            worker_class=m["worker_class"], workers=m["workers"],
                            threads=m["threads"]))
        logs = {a.label: AccessLog(a) for a in apps}
        print(f"models: {', '.join(a.label for a in apps)}; gunicorn.conf.py, TSAPI_AUTH="
              f"required, rate limits on, PostgreSQL fsync+synchronous_commit on", flush=True)
        for r in range(args.rounds):
            order = apps[r % len(apps):] + apps[:r % len(apps)]
            for cached in (False, True):
                if "mixed" in args.skip:
                    break
                how = "cached" if cached else "computed"
                print(f"\nround {r + 1}: mixed traffic, 4 clients, {args.mixed_seconds:.0f} s, "
                      f"query {how}; p50/p99 ms, client (server)", flush=True)
                for a in order:
                    row = run_mixed(a, logs[a.label], token, args.mixed_seconds, cached)
                    mixed_rows.setdefault(f"{a.label}, query {how}", []).append(row)
                    kinds = ", ".join(
                        f"{k} {fmt(row[k])}" + (f" ({fmt(row[k + ' (server)'])})"
                                                if k + " (server)" in row else "")
                        for k in ("write 1", "write 50", "query", "metrics"))
                    print(f"  {a.label:20} {row['rate']:5.0f} req/s; {kinds}; /ingest server "
                          f"{fmt(row.get('writes (server)', (0, 0)))}; load {row['load']:.2f}",
                          flush=True)
            if "fleet" not in args.skip:
                print(f"\nround {r + 1}: fleet, {args.devices} devices x 7 points every 10 s, "
                      f"{args.fleet_seconds:.0f} s, open loop", flush=True)
                for a in order:
                    row = run_fleet(a, logs[a.label], token, args)
                    fleet_rows.setdefault(a.label, []).append(row)
                    print(f"  {a.label:20} p50 {row['p50']:.1f} p99 {row['p99']:.1f} max "
                          f"{row['max']:.0f} ms (server p50 {row['server p50']:.1f} p99 "
                          f"{row['server p99']:.1f}); connections per worker mid-run "
                          f"{row['spread']}; {row['sent']}/{row['expected']} sent, "
                          f"{row['errors']} errors, {row['skipped']} skipped, stored once: "
                          f"{row['once']}; load {row['load']:.2f}", flush=True)
    except Exception:
        print_server_errors(apps)
        raise
    finally:
        stop_servers(apps)
        redis.cleanup()
        pg.cleanup()
        shutil.rmtree(base, ignore_errors=True)

    print("\nsummary over rounds")
    for name, rows in mixed_rows.items():
        print(f"  mixed {name:36} req/s {spread([r['rate'] for r in rows])}; "
              f"query p50 {spread([r['query'][0] for r in rows])}; "
              f"write 1 p50 {spread([r['write 1'][0] for r in rows])}")
    for name, rows in fleet_rows.items():
        print(f"  fleet {name:20} p99 {spread([r['p99'] for r in rows])}; "
              f"all sent, no errors, stored once: "
              f"{all(r['sent'] == r['expected'] and not r['errors'] and r['once'] for r in rows)}")
    print(f"load average at end: {bs.load_average()}; {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
