"""A rollup answer of a range off the level's boundaries runs as a kept (prepared, generic)
statement whose raw edges are read by a function planned with each call's values: the
answer must still be the raw path's, whatever the edges, zones, groups and fill."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from one_statement_support import body_for, same_answer
from rollup_support import at, write_tagged
from sqlalchemy import text

from tsapi.store import rollup_aligned
from tsapi.store.rollup_refresh import refresh

HOURS = 12  # of points from rollup_support.BASE; Europe's DST starts 5 hours in
AGGREGATIONS = ["count", "sum", "avg", "min", "max", "first", "last", "stddev"]


def _points(store) -> None:
    """Devices a and b every 30 s at uneven offsets, a series without the tag on the hour
    boundaries exactly and a microsecond either side of them."""
    points = []
    for step in range(HOURS * 120):
        for k, device in enumerate("ab"):
            second = step * 30 + 1 + (step * 7 % 29) * (k + 1) / 3 + k * 0.000001
            value = ((step * 13 + k * 5) % 29 - 14) / 4
            points.append((at(second), "temp", value, {"device": device}))
    for hour in range(1, HOURS):
        for offset, value in ((-0.000001, -2.5), (0, 7.25), (0.000001, -0.5)):
            points.append((at(hour * 3600 + offset), "temp", value + hour, {"site": "x"}))
    write_tagged(store, points)
    refresh(store.engine, store.storage, timedelta(0), now=at((HOURS + 1) * 3600))


def _plan_counts(app) -> dict[str, tuple[str, int, int]]:
    """(statement, generic plans, custom plans) per prepared statement of the app's one
    pooled session."""
    with app.extensions["tsapi"].db.engine.connect() as conn:
        rows = conn.execute(text("SELECT name, statement, generic_plans, custom_plans "
                                 "FROM pg_prepared_statements"))
        return {name: (statement, generic, custom) for name, statement, generic, custom in rows}


@pytest.fixture
def rolled_up(make_app, uncached_paths):
    """An app over a pool of one session (what it prepared is there on the next request),
    the raw path's client, the store, the points rolled up."""
    _, raw, store = uncached_paths
    _points(store)
    app = make_app(REDIS_URL=None, TSAPI_MAX_CACHED_BYTES=0, TSAPI_DB_POOL_SIZE=1)
    return app, raw, store


@pytest.mark.parametrize("extra", [{}, {"group_by": ["device"]}, {"interval": "1d"},
                                   {"timezone": "Europe/Berlin", "interval": "2h"}])
def test_a_range_off_the_boundaries_is_planned_once_per_session(rolled_up, extra):
    """A day 30 s off the hour was planned anew on every request (its edges read points,
    whose chunks a kept plan would all hold): now one generic plan serves every run."""
    app, raw, _ = rolled_up
    client = app.test_client()
    for _ in range(3):
        assert same_answer(client, raw, body_for(30, 8 * 3600 + 30, **extra)) == "rollup-1h"
    edged = [(generic, custom) for statement, generic, custom in _plan_counts(app).values()
             if "tsapi_points_between" in statement]
    assert len(edged) == 1, _plan_counts(app)
    generic, custom = edged[0]
    assert generic >= 1 and custom == 0, edged


EDGES = [(30, 30), (0.000001, 0), (0, -0.000001), (3599, 1), (1800, -1800), (59.5, 3540)]
SHAPES = [
    {}, {"interval": "2h"}, {"interval": "1d"}, {"group_by": ["device"]},
    {"tags": {"device": "b"}}, {"group_by": ["site"], "interval": "3h"},
    {"timezone": "Europe/Berlin", "interval": "1d"},
    {"timezone": "Europe/Berlin", "group_by": ["device"]},
    {"timezone": "America/St_Johns", "interval": "1h"},  # half-hour offset: minute level
    {"interval": "5m"},
]


# Each shape with two of the edges, each edge with three or four shapes (the whole grid took
# a minute of the suite; the property test below draws the other pairs).
@pytest.mark.parametrize(("edges", "extra"), [
    (EDGES[(i + k) % len(EDGES)], shape) for i, shape in enumerate(SHAPES) for k in (0, 3)])
def test_edges_and_whole_buckets_combine_as_raw_points_do(rolled_up, edges, extra):
    """Edges of a microsecond to almost an hour, before and after whole level buckets; a
    bucket holding an edge and rollup rows; a day across Europe's DST change."""
    app, raw, _ = rolled_up
    client = app.test_client()
    start, end = 3600 + edges[0], 9 * 3600 + edges[1]
    for aggregation in AGGREGATIONS:
        body = body_for(start, end, aggregation=aggregation, **extra)
        assert same_answer(client, raw, body).startswith("rollup-"), body


def test_points_written_into_an_edge_are_in_the_next_answer(rolled_up):
    """The kept statement reads the edges on every run, in its own snapshot: a write there
    (into a chunk of points made after the plan was kept, too) is in the very next answer."""
    app, raw, store = rolled_up
    client = app.test_client()
    refresh(store.engine, store.storage, timedelta(0), now=at(31 * 3600))
    body = body_for(30, 30 * 3600 + 30, interval="1d", aggregation="sum")
    for _ in range(2):
        assert same_answer(client, raw, body) == "rollup-1h"
    # Neither touches the whole hours in range: the guess still holds.
    write_tagged(store, [(at(30 * 3600 + 10), "temp", 100.0, {"device": "a"}),
                         (at(40), "temp", -1000.0, {"device": "a"})])
    answer = client.post("/query", json=body).get_json()
    assert answer[-1]["value"] == 100.0 and answer[0]["value"] < -900, answer
    assert same_answer(client, raw, body) == "rollup-1h"


@pytest.mark.parametrize("extra", [{}, {"interval": "1d"}, {"group_by": ["device"]},
                                   {"timezone": "Europe/Berlin", "interval": "1d"}])
def test_a_long_range_off_the_boundaries_planned_with_its_values(rolled_up, monkeypatch, extra):
    """A range of more level buckets than a kept plan is used for runs the same statement
    planned with its values: its edges come through the same function."""
    monkeypatch.setattr(rollup_aligned, "PREPARED_BUCKETS", 0)
    app, raw, _ = rolled_up
    client = app.test_client()
    for aggregation in ("count", "avg", "first", "last", "stddev"):
        body = body_for(1799, 9 * 3600 + 0.5, aggregation=aggregation, **extra)
        assert same_answer(client, raw, body) == "rollup-1h", body
    assert not any("tsapi_points_between" in statement
                   for statement, _, _ in _plan_counts(app).values())


OFFSETS = st.sampled_from([0, 0.000001, 0.5, 30, 59.999999, 1799, 3599.999999])
QUERY = st.fixed_dictionaries({
    "start": st.tuples(st.integers(0, 4), OFFSETS),
    "length": st.tuples(st.integers(0, 7), OFFSETS),
    "aggregation": st.sampled_from(AGGREGATIONS),
    "interval": st.sampled_from(["1m", "5m", "1h", "2h", "1d", "1mo"]),
    "timezone": st.sampled_from([None, "Europe/Berlin", "America/St_Johns", "Asia/Kolkata"]),
    "group_by": st.sampled_from([[], ["device"], ["site"]]),
    "tags": st.sampled_from([{}, {"device": "a"}]),
    "fill": st.sampled_from(["none", "none", "null", "previous"]),
})


@given(query=QUERY)
@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_range_answers_as_raw_points_do(rolled_up, query):
    app, raw, _ = rolled_up
    start = query["start"][0] * 3600 + query["start"][1]
    end = start + query["length"][0] * 3600 + query["length"][1] + 60
    body = body_for(start, end, aggregation=query["aggregation"], interval=query["interval"],
                    group_by=query["group_by"], tags=query["tags"], fill=query["fill"])
    if query["timezone"]:
        body["timezone"] = query["timezone"]
    same_answer(app.test_client(), raw, body)
