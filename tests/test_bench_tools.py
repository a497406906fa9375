"""The benchmarks stay runnable: their SQL baselines compile and run against a real database."""

import os
import sys
from argparse import Namespace
from pathlib import Path

import redis
from helpers import ingest, point

from tsapi.store.keys import create_key

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

import bench_ingest  # noqa: E402
import bench_limiter  # noqa: E402
import bench_query  # noqa: E402
import profile_requests  # noqa: E402


def test_query_baselines_are_the_statements_tsapi_runs(app, database_urls, backend):
    client = app.test_client()
    ingest(client, [point("2020-07-14T01:00:00Z", "temperature", 20.5, device="d1"),
                    point("2020-07-14T02:00:00Z", "temperature", 21.5, device="d2")])
    url = database_urls[backend]
    day = {"metric": "temperature", "start_time": "2020-07-14T00:00:00Z",
           "end_time": "2020-07-15T00:00:00Z"}
    for body, rendering in ((dict(day, aggregation="avg", interval="1 hour"), False),
                            (day, False), (dict(day, tags={"device": "d1"}), True)):
        sql = bench_query.baseline_sql(url, body, rendering)
        assert sql.lstrip().upper().startswith("SELECT")
        assert len(bench_query.time_copy(url, sql, 1)) == 1


def test_ingest_benchmark_counts_distinct_points_and_copies_them(app, database_urls, backend):
    points = bench_ingest.make_points(50, "t")
    assert {p["tags"]["device"] for p in points} >= {"t-device-0"}  # new series mid-run
    url = database_urls[backend]
    seconds = bench_ingest.copy_ceiling(url, points, 100)
    assert seconds > 0
    assert bench_ingest.count_points(url) == bench_ingest.unique_points(points)


def test_limiter_benchmark_times_authenticated_requests_with_limits_on_and_off(
        make_app, redis_server, capsys):
    on = make_app(TSAPI_AUTH="required", TSAPI_RATE_LIMITS="on")
    off = make_app(TSAPI_AUTH="required", TSAPI_RATE_LIMITS="off")
    with on.extensions["tsapi"].db.engine.begin() as conn:
        _, token = create_key(conn, "bench", {"read"})
    bench_limiter.run({"on": on.test_client(), "off": off.test_client()},
                      redis.Redis.from_url(redis_server.url()),
                      {"Authorization": f"Bearer {token}"},
                      Namespace(blocks=2, per_block=3, path="/metrics", write=False))
    assert "rate limiter (on) adds" in capsys.readouterr().out  # every block's 200 asserted


def test_limiter_benchmark_times_writes_with_the_count_sent_ahead_or_not(
        make_app, redis_server, capsys):
    settings = {"TSAPI_AUTH": "required", "TSAPI_RATE_LIMITS": "on"}
    on, before = make_app(**settings), make_app(**settings)
    before.extensions["tsapi_rate_limits"].sender = None
    off = make_app(TSAPI_AUTH="required", TSAPI_RATE_LIMITS="off")
    with on.extensions["tsapi"].db.engine.begin() as conn:
        _, token = create_key(conn, "bench", {"write"})
    apps = {"on": on.test_client(), "off": off.test_client(),
            "on, read before the view": before.test_client()}
    bench_limiter.run(apps, redis.Redis.from_url(redis_server.url()),
                      {"Authorization": f"Bearer {token}"},
                      Namespace(blocks=2, per_block=3, path="/metrics", write=True))
    out = capsys.readouterr().out
    assert "rate limiter (on, read before the view) adds" in out
    assert "POST /ingest" in out


def test_request_profile_times_each_kind_with_a_key_and_limits_on(make_app, capsys, tmp_path):
    # Limits on and counted, as profile_requests runs them: its warm-up alone passes the
    # default write limit.
    app = make_app(TSAPI_AUTH="required", TSAPI_RATE_LIMITS="on",
                   TSAPI_RATE_LIMIT_WRITE=profile_requests.HIGH_LIMIT)
    with app.extensions["tsapi"].db.engine.begin() as conn:
        _, token = create_key(conn, "bench", {"read", "write"})
    profile_requests.measure(app.test_client(), token, Namespace(
        requests=3, runs=1, profile=tmp_path, kinds=""))  # exits on any answer but 200
    out = capsys.readouterr().out
    kinds = ("cached /query", "GET /metrics", "1-point /ingest", "50-point /ingest",
             "49-point /write")
    assert all(f"{kind:16} p50" in out for kind in kinds)
    assert {p.name for p in tmp_path.iterdir()} == {
        f"{kind.replace(' ', '_').replace('/', '')}.{ext}" for kind in kinds
        for ext in ("prof", "txt")}


def test_cpu_meter_counts_the_cpu_of_a_process_tree():
    """tools/process_cpu.py: a child that burns 0.1 s of CPU (by its own clock) once metering
    has begun is found in its parent's tree and metered at that, give or take clock ticks."""
    import subprocess

    import process_cpu

    burn = ("import sys, time\n"
            "sys.stdin.readline()\n"
            "start = time.process_time()\n"
            "while time.process_time() - start < 0.1: pass\n"
            "print('done', flush=True)\n"
            "sys.stdin.readline()\n")
    child = subprocess.Popen([sys.executable, "-c", burn], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.pid in process_cpu.process_tree(os.getpid())
        meter = process_cpu.CpuMeter({"tree": lambda: process_cpu.process_tree(os.getpid())})
        meter.start()
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline() == "done\n"
        used = meter.stop()["tree"]
    finally:
        child.communicate("")
    assert used >= 0.08  # /proc counts in clock ticks (1/100 s): one lost at either end
