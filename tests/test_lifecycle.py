"""Deleting a metric, and retention: what goes, what stays, first/last seen afterwards."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from helpers import assert_problem, ingest, point, query

NOW = datetime.now(UTC).replace(microsecond=0)


def ago(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat().replace("+00:00", "Z")


def iso(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat()


def counts(app) -> dict[str, int]:
    """Points per metric name, and points whose series is gone (orphans)."""
    engine = sa.create_engine(app.config["DATABASE_URL"])
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT coalesce(m.name, '<orphan>'), count(*) FROM points p "
            "LEFT JOIN series s ON s.id = p.series_id LEFT JOIN metrics m ON m.id = s.metric_id "
            "GROUP BY 1")).all()
        series = conn.execute(sa.text("SELECT count(*) FROM series")).scalar()
    engine.dispose()
    return {**dict(rows), "<series>": series}


def seen(client) -> dict[str, tuple]:
    return {m["name"]: (m["first_seen"], m["last_seen"]) for m in client.get("/metrics").json}


# -- DELETE /metrics/{name} -----------------------------------------------------------------

def test_delete_metric_removes_its_points_and_series_only(app, client):
    ingest(client, [point(ago(3), "doomed", 1.0, room="a"), point(ago(2), "doomed", 2.0,
                                                                 room="b"),
                    point(ago(3), "kept", 5.0, room="a"), point(ago(1), "kept", 6.0)])
    assert set(seen(client)) == {"doomed", "kept"}  # now cached
    response = client.delete("/metrics/doomed")
    assert response.status_code == 204 and response.data == b""
    assert set(seen(client)) == {"kept"}  # the cached list is not served stale
    assert counts(app) == {"kept": 2, "<series>": 2}
    rows = query(client, metric="kept", start_time=ago(10), end_time=ago(0))
    assert [r["value"] for r in rows] == [5.0, 6.0]
    assert_problem(client.post("/query", json={"metric": "doomed", "start_time": ago(10),
                                               "end_time": ago(0)}), 404)


def test_delete_unknown_metric_is_404(client):
    problem = assert_problem(client.delete("/metrics/never_was"), 404)
    assert "never_was" in problem["detail"]


def test_a_deleted_metric_can_be_written_again_from_scratch(client):
    ingest(client, [point(ago(5), "phoenix", 7.0)])
    rows = query(client, metric="phoenix", start_time=ago(10), end_time=ago(0))
    assert [r["value"] for r in rows] == [7.0]  # and cached
    assert client.delete("/metrics/phoenix").status_code == 204
    assert_problem(client.get("/metrics/phoenix"), 404)
    ingest(client, [point(ago(1), "phoenix", "text")])  # a new metric: its type may differ
    assert seen(client)["phoenix"] == (iso(1), iso(1))
    rows = query(client, metric="phoenix", start_time=ago(10), end_time=ago(0))
    assert [r["value"] for r in rows] == ["text"]


def test_a_metric_deleted_elsewhere_is_written_again_once_under_its_new_row(app, client):
    """The writer caches metric ids; a deletion by another process must not make the next
    write fail or vanish: it is stored once, under the metric made anew."""
    ingest(client, [point(ago(5), "lazarus", 1.0)])
    ingest(client, [point(ago(4), "lazarus", 2.0)])  # now served from the id caches
    engine = sa.create_engine(app.config["DATABASE_URL"])
    with engine.begin() as conn:  # as another worker's DELETE /metrics/lazarus would
        conn.execute(sa.text("DELETE FROM points WHERE series_id IN (SELECT s.id FROM series s "
                             "JOIN metrics m ON m.id = s.metric_id WHERE m.name = 'lazarus')"))
        conn.execute(sa.text("DELETE FROM series WHERE metric_id IN "
                             "(SELECT id FROM metrics WHERE name = 'lazarus')"))
        conn.execute(sa.text("DELETE FROM metrics WHERE name = 'lazarus'"))
    engine.dispose()
    ingest(client, [point(ago(3), "lazarus", 3.0)])
    assert counts(app) == {"lazarus": 1, "<series>": 1}
    assert seen(client)["lazarus"] == (iso(3), iso(3))


# -- tsapi retention apply --------------------------------------------------------------------

@pytest.fixture
def aged(app, client):
    """Three metrics with points 100, 50 and 1 day old; 'old_only' has just old points."""
    points = []
    for name in ("alpha", "beta"):
        for days in (100, 50, 1):
            points.append(point(ago(days), name, days, site="x"))
        points.append(point(ago(100.5), name, 0.5, site="y"))
    points.append(point(ago(200), "old_only", 1.0))
    ingest(client, points)
    assert seen(client)["alpha"] == (iso(100.5), iso(1))  # cached before retention runs
    return app


def retention(app, *args):
    result = app.test_cli_runner().invoke(args=["retention", "apply", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_global_cut_removes_older_points_and_recomputes_first_seen(aged, client, backend):
    output = retention(aged, "--older-than", "90d")
    assert counts(aged) == {"alpha": 2, "beta": 2, "<series>": 5}
    assert seen(client) == {"alpha": (iso(50), iso(1)), "beta": (iso(50), iso(1)),
                            "old_only": (None, None)}
    assert "recomputed for 3 metrics" in output
    if backend == "timescaledb":
        assert "dropped" in output and "chunks" in output


def test_per_metric_override_can_be_shorter(aged, client, backend):
    output = retention(aged, "--older-than", "90d", "--metric", "beta=30d")
    assert counts(aged) == {"alpha": 2, "beta": 1, "<series>": 5}
    assert seen(client)["beta"] == (iso(1), iso(1))
    assert seen(client)["alpha"] == (iso(50), iso(1))
    # TimescaleDB drops the chunks before 90 days whole (their rows are not counted).
    deleted = 1 if backend == "timescaledb" else 3
    assert f"deleted {deleted} points of beta" in output


def test_per_metric_override_can_be_longer_even_when_chunks_are_dropped(aged, client):
    retention(aged, "--older-than", "30d", "--metric", "alpha=365d")
    assert counts(aged) == {"alpha": 4, "beta": 1, "<series>": 5}
    assert seen(client)["alpha"] == (iso(100.5), iso(1))
    assert seen(client)["beta"] == (iso(1), iso(1))


def test_only_overrides_touch_only_their_metrics(aged, client):
    retention(aged, "--metric", "alpha=60d")
    assert counts(aged) == {"alpha": 2, "beta": 4, "old_only": 1, "<series>": 5}
    assert seen(client)["alpha"] == (iso(50), iso(1))


def test_retention_needs_a_cut_and_refuses_months(aged):
    runner = aged.test_cli_runner()
    assert runner.invoke(args=["retention", "apply"]).exit_code != 0
    assert runner.invoke(args=["retention", "apply", "--older-than", "3mo"]).exit_code != 0
    assert runner.invoke(args=["retention", "apply", "--metric", "alpha"]).exit_code != 0
    assert counts(aged)["alpha"] == 4


def test_delete_waits_for_an_ingest_in_flight_and_leaves_no_orphans(app, client):
    """An ingest holds the metric row FOR KEY SHARE; the deletion queues behind it, then
    removes what the ingest wrote too."""
    import threading
    import time

    from tsapi.store.catalog import lock_metrics

    ingest(client, [point(ago(2), "contested", 1.0)])
    engine = sa.create_engine(app.config["DATABASE_URL"])
    result = {}
    with engine.connect() as conn:
        with conn.begin():
            metric = lock_metrics(conn, {"contested": "number"})["contested"]
            worker = threading.Thread(
                target=lambda: result.setdefault("status", client.delete(
                    "/metrics/contested").status_code))
            worker.start()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:  # until the deletion waits for our lock
                waiting = conn.execute(sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tsapi' "
                    "AND wait_event_type = 'Lock'")).scalar()
                if waiting:
                    break
                time.sleep(0.02)
            assert waiting == 1 and "status" not in result
            sid = conn.execute(sa.text("SELECT id FROM series WHERE metric_id = :m"),
                               {"m": metric.id}).scalar()
            conn.execute(sa.text("INSERT INTO points (time, series_id, value_num) "
                                 "VALUES (now(), :s, 2.0)"), {"s": sid})
        worker.join(timeout=20)
    engine.dispose()
    assert result["status"] == 204
    assert counts(app) == {"<series>": 0}
