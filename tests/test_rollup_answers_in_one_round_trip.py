"""A rollup answer over whole level buckets of a metric the worker knows is one statement,
sent alone (no BEGIN, no ROLLBACK, no metric lookup); a metric deleted or made anew
elsewhere is never answered from the id the worker remembers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from one_statement_support import body_for, same_answer, series_data
from psycopg2.extensions import TRANSACTION_STATUS_IDLE
from rollup_support import at, write_tagged
from sqlalchemy import event

from tsapi.store.lifecycle import delete_metric
from tsapi.store.rollup_refresh import refresh


def _sent(app) -> list[tuple[str, int]]:
    """(statement, the session's transaction status right after it) of every statement the
    app's engine sends: IDLE after a statement means no transaction was opened around it."""
    seen: list[tuple[str, int]] = []

    def after(conn, cursor, statement, *rest):
        status = conn.connection.dbapi_connection.info.transaction_status
        seen.append((statement, status))

    event.listen(app.extensions["tsapi"].db.engine, "after_cursor_execute", after)
    return seen


@pytest.fixture
def rolled_app(make_app, uncached_paths):
    rolled, raw, store = uncached_paths
    series_data(store)
    refresh(store.engine, store.storage, timedelta(0), now=at(9 * 3600))
    # A pool of one session: the statement it prepared on the first request is there to run.
    app = make_app(REDIS_URL=None, TSAPI_MAX_CACHED_BYTES=0, TSAPI_DB_POOL_SIZE=1)
    return app, raw, store


@pytest.mark.parametrize("extra", [
    {"tags": {"device": "a"}},  # single rollup rows
    {"interval": "2h"},  # three series combined
    {"group_by": ["device"]},  # the groups counted first (the cell limit), then the answer
    {"start_time": at(1800.5).isoformat(), "end_time": at(6 * 3600 - 7).isoformat()},  # edges
])
def test_a_known_metric_is_answered_by_one_statement_outside_a_transaction(rolled_app, extra):
    app, raw, _ = rolled_app
    client = app.test_client()
    body = body_for(3600, 7 * 3600, **extra)
    for _ in range(2):  # the worker learns the metric and its storage; the session prepares
        same_answer(client, raw, body)
    seen = _sent(app)
    assert same_answer(client, raw, body) == "rollup-1h"
    expected = 2 if "group_by" in extra else 1
    assert len(seen) == expected, [s for s, _ in seen]
    assert all(status == TRANSACTION_STATUS_IDLE for _, status in seen), seen
    assert not any("FROM metrics" in s for s, _ in seen)


def test_a_time_zone_or_fill_still_reads_in_one_snapshot(rolled_app):
    """What needs several statements (a zone set for the transaction, fill seeds) keeps its
    REPEATABLE READ transaction."""
    app, raw, _ = rolled_app
    client = app.test_client()
    for extra in ({"timezone": "Europe/Paris"}, {"fill": "previous"}):
        body = body_for(3600, 7 * 3600, **extra)
        same_answer(client, raw, body)
        seen = _sent(app)
        same_answer(client, raw, body)
        assert any(status != TRANSACTION_STATUS_IDLE for _, status in seen), seen


def _remembered_then_deleted(client, raw, store, *bodies) -> None:
    """The rolled-up app answers `bodies` (so its worker remembers the metric), then another
    connection deletes the metric."""
    for body in bodies:
        assert same_answer(client, raw, body) == "rollup-1h"
    with store.engine.begin() as conn:
        assert delete_metric(conn, "temp")


def test_a_metric_made_anew_elsewhere_is_answered_from_its_new_points(rolled_app):
    """Another worker deletes the metric and points arrive under the same name (a new id):
    this worker's remembered id finds no series and the name is looked up again."""
    app, raw, store = rolled_app
    client = app.test_client()
    bodies = [body_for(3600, 7 * 3600, **extra)
              for extra in ({}, {"tags": {"device": "a"}}, {"group_by": ["device"]})]
    _remembered_then_deleted(client, raw, store, *bodies)
    write_tagged(store, [(at(h * 1800 + 1), "temp", float(h), {"device": "a"})
                         for h in range(14)])
    for body in bodies:
        same_answer(client, raw, body)
    assert client.post("/query", json=bodies[0]).get_json()[0]["value"] == 2.5


def test_a_metric_deleted_elsewhere_is_not_found(rolled_app):
    app, raw, store = rolled_app
    client = app.test_client()
    body = body_for(3600, 7 * 3600)
    _remembered_then_deleted(client, raw, store, body)
    assert client.post("/query", json=body).status_code == 404
    assert client.post("/query", json=body).status_code == 404


def test_a_metric_made_anew_with_strings_refuses_a_mean(rolled_app):
    """The remembered type (numbers) is a deleted metric's: the new one holds strings."""
    app, raw, store = rolled_app
    client = app.test_client()
    body = body_for(3600, 7 * 3600)
    _remembered_then_deleted(client, raw, store, body)
    write_tagged(store, [(at(3600 + 5), "temp", "warm", {"device": "a"})])
    answer = client.post("/query", json=body)
    assert answer.status_code == 400, answer.get_data()
    counted = client.post("/query", json={**body, "aggregation": "count"})
    assert [row["value"] for row in counted.get_json()] == [1]


@pytest.mark.parametrize("extra", [{"tags": {"device": "a"}}, {"group_by": ["device"]}])
def test_a_known_metric_is_bounded_by_the_cell_limit(make_app, uncached_paths, extra):
    """The limit on the answer's rows holds on the one-statement path too: 6 hourly buckets
    of one series (or of three groups) are more than 5 rows."""
    _, _, store = uncached_paths
    series_data(store)
    refresh(store.engine, store.storage, timedelta(0), now=at(9 * 3600))
    client = make_app(REDIS_URL=None, TSAPI_MAX_CACHED_BYTES=0,
                      TSAPI_MAX_QUERY_CELLS=5).test_client()
    small = client.post("/query", json=body_for(3600, 2 * 3600, tags={"device": "a"}))
    assert small.status_code == 200  # the worker learns the metric
    for _ in range(2):
        answer = client.post("/query", json=body_for(3600, 7 * 3600, **extra))
        assert answer.status_code == 422, answer.get_data()


def test_a_metric_deleted_elsewhere_is_not_found_before_the_cell_limit(make_app,
                                                                      uncached_paths):
    """The usual path looks the name up before it counts the answer's rows: a deleted
    metric is a 404 there, whatever the range. The remembered id must not make it a 422."""
    _, _, store = uncached_paths
    series_data(store)
    refresh(store.engine, store.storage, timedelta(0), now=at(9 * 3600))
    settings = {"REDIS_URL": None, "TSAPI_MAX_CACHED_BYTES": 0, "TSAPI_MAX_QUERY_CELLS": 5}
    client = make_app(**settings).test_client()
    raw = make_app(TSAPI_ROLLUPS="off", **settings).test_client()
    assert client.post("/query", json=body_for(3600, 2 * 3600)).status_code == 200
    with store.engine.begin() as conn:
        assert delete_metric(conn, "temp")
    body = body_for(3600, 7 * 3600)  # 6 hourly buckets: more than 5 rows
    assert raw.post("/query", json=body).status_code == 404
    answer = client.post("/query", json=body)
    assert answer.status_code == 404, answer.get_data()
