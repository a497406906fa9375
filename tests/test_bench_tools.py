"""The benchmarks stay runnable: their SQL baselines compile and run against a real database."""

import sys
from pathlib import Path

from helpers import ingest, point

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

import bench_ingest  # noqa: E402
import bench_query  # noqa: E402


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
