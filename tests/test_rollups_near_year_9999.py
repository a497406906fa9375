"""Rollups and the last hour of year 9999: a level bucket there would end past the last
instant Python represents, which raised OverflowError in queries and in the refresher."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from helpers import ingest, point, query
from rollup_support import Store, at

from tsapi.store.rollup_refresh import rebuild_metric, refresh

LAST_HOUR = "9999-12-31T23:30:00Z"
LAST_INSTANT = "9999-12-31T23:59:59.999999Z"


def pending_invalidations(store: Store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM rollup_invalidations")).scalar()


@pytest.mark.parametrize(("start", "count"), [("9999-12-31T23:00:00Z", 2),
                                               ("9999-12-31T23:59:00Z", 1)])
def test_an_aggregate_over_the_last_hour_of_year_9999_counts_its_points(client, start, count):
    ingest(client, [point(LAST_HOUR, "temp", 1.0), point("9999-12-31T23:59:30Z", "temp", 2.0),
                    point(LAST_INSTANT, "temp", 3.0)])  # past the range's (exclusive) end
    rows = query(client, metric="temp", aggregation="count", start_time=start,
                 end_time=LAST_INSTANT)
    assert [r["value"] for r in rows] == [count]


def test_the_refresher_consumes_a_write_in_the_last_hour_of_year_9999(client, store):
    store.write([(at(0), "temp", 1.0, "a")])
    refresh(store.engine, store.storage, timedelta(0), now=at(7200))
    ingest(client, [point(LAST_HOUR, "temp", 2.0, device="a")])
    refresh(store.engine, store.storage, timedelta(0), now=at(7200))
    assert pending_invalidations(store) == 0


def test_a_first_refresh_and_a_rebuild_of_points_only_in_year_9999_end(client, store):
    ingest(client, [point(LAST_HOUR, "temp", 2.0)])
    refresh(store.engine, store.storage, timedelta(0), now=at(7200))
    with store.engine.connect() as conn:
        metric_id = conn.execute(sa.text("SELECT id FROM metrics")).scalar()
    assert rebuild_metric(store.engine, store.storage, metric_id) == 0
