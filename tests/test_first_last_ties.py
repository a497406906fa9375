"""first/last where points of several series share a time: one rule on every path."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rollup_support import Store, at

from tsapi.store.rollup_refresh import refresh


@pytest.mark.parametrize("rollups", ["off", "on"])
def test_tied_points_give_the_smallest_value_first_and_the_largest_last(
        make_app, database_urls, backend, rollups):
    client = make_app(REDIS_URL=None, TSAPI_ROLLUPS=rollups).test_client()
    store = Store(database_urls[backend])
    try:
        # In each hour both devices write at the same instants, the larger value from a
        # different device in each, so no scan order picks the rule's value in all of them.
        points = []
        for hour, (a, b) in enumerate([(5.0, 1.0), (1.0, 5.0), (2.5, -3.0), (-3.0, 2.5)]):
            for second in (10, 3000):
                points += [(at(hour * 3600 + second), "temp", a, "a"),
                           (at(hour * 3600 + second), "temp", b, "b")]
        store.write(points)
        refresh(store.engine, store.storage, timedelta(0), now=at(8 * 3600))
        for interval in ("1h", "2h", None):
            body = {"metric": "temp", "start_time": at(0).isoformat(),
                    "end_time": at(4 * 3600).isoformat(),
                    **({"interval": interval} if interval else {})}
            first = client.post("/query", json={**body, "aggregation": "first"}).get_json()
            last = client.post("/query", json={**body, "aggregation": "last"}).get_json()
            smallest = {"1h": [1.0, 1.0, -3.0, -3.0], "2h": [1.0, -3.0], None: [1.0]}
            largest = {"1h": [5.0, 5.0, 2.5, 2.5], "2h": [5.0, 2.5], None: [2.5]}
            assert [r["value"] for r in first] == smallest[interval], interval
            assert [r["value"] for r in last] == largest[interval], interval
    finally:
        store.dispose()
