"""Ingest's fast paths keep the contract: COPY, upsert, gzip, NDJSON, concurrent writers."""

import gzip
import threading
from datetime import UTC, datetime, timedelta

import orjson
import sqlalchemy as sa
from helpers import assert_problem, ingest, point, query

from tsapi.store.writer import SMALL_BATCH

T0 = datetime(2024, 5, 1, tzinfo=UTC)
START, END = "2020-01-01T00:00:00Z", "2025-01-01T00:00:00Z"


def many(n, metric="load", value=lambda i: float(i), **tags):
    """n points one second apart: more than SMALL_BATCH takes the COPY path."""
    return [point((T0 + timedelta(seconds=i)).isoformat(), metric, value(i), **tags)
            for i in range(n)]


def count(client, metric, **extra):
    rows = query(client, metric=metric, start_time=START, end_time=END, aggregation="count",
                 **extra)
    return rows[0]["value"] if rows else 0


def db_scalar(app, sql):
    with app.extensions["tsapi"].db.engine.connect() as conn:
        return conn.execute(sa.text(sql)).scalar()


def test_large_batch_sent_twice_is_stored_once_with_the_later_values(client):
    n = SMALL_BATCH * 3
    ingest(client, many(n))
    ingest(client, many(n, value=lambda i: i + 0.5))
    assert count(client, "load") == n
    rows = query(client, metric="load", start_time=START, end_time=END)
    assert [r["value"] for r in rows] == [i + 0.5 for i in range(n)]


def test_large_batch_that_repeats_a_point_keeps_the_last_value(client):
    points = many(SMALL_BATCH * 2)
    points.append(point(T0.isoformat(), "load", -1.0))  # same time as points[0], later
    ingest(client, points)
    rows = query(client, metric="load", start_time=START, end_time=END)
    assert len(rows) == SMALL_BATCH * 2
    assert rows[0]["value"] == -1.0


def test_large_rejected_batch_stores_nothing(client):
    points = many(SMALL_BATCH * 2)
    points[-1]["value"] = True
    assert_problem(client.post("/ingest", json={"data": points}), 422)
    assert client.get("/metrics").get_json() == []


def test_first_and_last_seen_stay_exact_over_large_batches(client):
    points = many(SMALL_BATCH * 2)
    ingest(client, points[500:])
    ingest(client, points[:10])
    (metric,) = client.get("/metrics").get_json()
    assert metric["first_seen"] == T0.isoformat()
    assert metric["last_seen"] == (T0 + timedelta(seconds=SMALL_BATCH * 2 - 1)).isoformat()


def test_gzip_body_is_accepted(client):
    body = gzip.compress(orjson.dumps({"data": many(10)}))
    response = client.post("/ingest", data=body, content_type="application/json",
                           headers={"Content-Encoding": "gzip"})
    assert response.status_code == 200, response.get_json()
    assert count(client, "load") == 10


def test_broken_gzip_is_a_400_naming_the_body(client):
    response = client.post("/ingest", data=b"not gzip at all", content_type="application/json",
                           headers={"Content-Encoding": "gzip"})
    problem = assert_problem(response, 400)
    assert problem["errors"] == [{"field": "body", "message": "is not valid gzip"}]


def test_truncated_gzip_is_a_400_naming_the_body(client):
    body = gzip.compress(orjson.dumps({"data": many(10)}))[:-8]
    response = client.post("/ingest", data=body, content_type="application/json",
                           headers={"Content-Encoding": "gzip"})
    problem = assert_problem(response, 400)
    assert problem["errors"] == [{"field": "body", "message": "is truncated gzip"}]
    assert client.get("/metrics").get_json() == []  # nothing stored


def test_an_unknown_content_encoding_is_a_415_naming_the_header(client):
    response = client.post("/ingest", data=b"{}", content_type="application/json",
                           headers={"Content-Encoding": "br"})
    problem = assert_problem(response, 415)
    assert [e["field"] for e in problem["errors"]] == ["Content-Encoding"]


def test_ndjson_body_is_one_point_per_line(client):
    lines = b"\n".join(orjson.dumps(p) for p in many(5)) + b"\n\n"
    response = client.post("/ingest", data=lines, content_type="application/x-ndjson")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["ingested_count"] == 5
    assert count(client, "load") == 5


def test_ndjson_bad_line_is_named_and_nothing_stored(client):
    lines = orjson.dumps(many(1)[0]) + b"\n{broken\n"
    problem = assert_problem(
        client.post("/ingest", data=lines, content_type="application/x-ndjson"), 422)
    assert problem["errors"][0]["field"] == "line 2"
    assert client.get("/metrics").get_json() == []


def test_ndjson_points_are_validated_like_json_ones(client):
    lines = orjson.dumps(point("2024-05-01T00:00:00Z", "m", "x")) + b"\n" + \
        orjson.dumps(point("2024-05-01T00:00:01Z", "m", 1.0))
    problem = assert_problem(
        client.post("/ingest", data=lines, content_type="application/x-ndjson"), 422)
    assert [e["field"] for e in problem["errors"]] == ["data[1].value"]


def test_concurrent_clients_creating_the_same_series_store_every_point(app):
    """4 writers at once, all creating the same new metrics and series, some points shared."""
    writers, per_writer = 4, SMALL_BATCH + 200
    barrier = threading.Barrier(writers)
    failures = []

    def write(k):
        client = app.test_client()
        points = []
        for metric in ("shared_a", "shared_b"):
            for device in ("d1", "d2", "d3"):
                # Each writer's own seconds, plus the first 100 seconds that all share.
                points += [point((T0 + timedelta(seconds=s)).isoformat(), metric, float(s),
                                 device=device)
                           for s in list(range(100)) + list(range(10_000 * (k + 1),
                                                                  10_000 * (k + 1) + per_writer))]
        barrier.wait()
        response = client.post("/ingest", json={"data": points})
        if response.status_code != 200:
            failures.append(response.get_json())

    threads = [threading.Thread(target=write, args=(k,)) for k in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    client = app.test_client()
    for metric in ("shared_a", "shared_b"):
        assert count(client, metric) == 3 * (100 + writers * per_writer)
    assert db_scalar(app, "SELECT count(*) FROM series") == 6
    assert db_scalar(app, "SELECT count(*) FROM metrics") == 2


def test_benchmark_sized_load_stores_exactly_what_was_sent(client, app):
    """~70,000 telemetry points in 5,000-point batches, as tools/bench_ingest.py sends."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
    import telemetry

    points = [p for row in telemetry.generate_rows(10_000, 7, telemetry.DEFAULT_START, 1)
              for p in telemetry.row_to_points(row)]
    for i in range(0, len(points), 5000):
        ingest(client, points[i:i + 5000])
    distinct = {(p["metric"], p["tags"]["device"], p["time"]) for p in points}
    assert db_scalar(app, "SELECT count(*) FROM points") == len(distinct)
    assert count(client, "temperature") == sum(1 for p in points if p["metric"] == "temperature")
