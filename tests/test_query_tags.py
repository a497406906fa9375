"""POST /query with tags and group_by: tag filters select series, group_by splits results
per tag values (raw or aggregated). Expectations are computed in Python."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from helpers import (
    assert_tags_then_time_order,
    expected_buckets,
    hour_of,
    ingest,
    iso,
    parse_row_time,
    point,
    query,
    rows_by_group,
)
from helpers import time_value_pairs as pairs

T0 = datetime(2024, 3, 10, tzinfo=UTC)
HOUR = timedelta(hours=1)


# --- a metric of several series with different tag sets -------------------------------------

SERIES = {
    "s1": {"host": "a", "dc": "x"},
    "s2": {"host": "b", "dc": "x"},
    "s3": {"host": "a", "dc": "y"},
    "s4": {"host": "c"},
    "s5": {"dc": "y"},
    "s6": {},
}
TAGGED_END = T0 + 4 * HOUR


def tagged_points() -> list[tuple[str, datetime, float]]:
    """(series, time, value): every series has its own minute offset, so times are unique;
    some hours are left empty; one point before the range and one at its end per series."""
    out = []
    for idx, name in enumerate(SERIES):
        for h in range(4):
            if (idx + h) % 4 != 3:
                out.append((name, T0 + h * HOUR + timedelta(minutes=idx * 7 + 1),
                            float(idx * 10 + h) + 0.5))
        out.append((name, T0 - timedelta(minutes=idx + 1), 1000.0 + idx))
        out.append((name, TAGGED_END, -1000.0 - idx))
    return out


@pytest.fixture
def tagged(client):
    data = tagged_points()
    ingest(client, [point(iso(t), "temp", v, **SERIES[s]) for s, t, v in data])
    return [(s, t, v) for s, t, v in data if T0 <= t < TAGGED_END]


def matches(tags: dict, wanted: dict) -> bool:
    for key, value in wanted.items():
        allowed = [value] if isinstance(value, str) else value
        if tags.get(key) not in allowed:
            return False
    return True


RANGE = {"start_time": iso(T0), "end_time": iso(TAGGED_END)}


# --- tags filter ---------------------------------------------------------------------------


TAG_FILTERS = [{"host": "a"}, {"host": ["a", "b"]}, {"host": ["a", "c"], "dc": "x"},
               {"dc": "y"}, {"dc": ["y"], "host": ["a", "zzz"]}]


def test_tag_filter_returns_only_points_of_matching_series(client, tagged):
    # Equality, any-of, both together, and two lists.
    for wanted in TAG_FILTERS:
        rows = query(client, metric="temp", tags=wanted, **RANGE)
        want = sorted((t, v) for s, t, v in tagged if matches(SERIES[s], wanted))
        assert want, "the filter must select something for this test to mean anything"
        assert pairs(rows) == want, wanted


def test_tag_filter_matching_nothing_gives_no_rows(client, tagged):
    # An unknown value, unknown values, an unknown key, and two keys no series has together.
    for wanted in ({"host": "zzz"}, {"host": ["zzz", "yyy"]}, {"rack": "a"},
                   {"host": "a", "dc": "z"}):
        assert query(client, metric="temp", tags=wanted, **RANGE) == [], wanted
        assert query(client, metric="temp", tags=wanted, aggregation="sum", **RANGE) == [], \
            wanted
        assert query(client, metric="temp", tags=wanted, aggregation="count",
                     interval="1 hour", **RANGE) == [], wanted


def test_tag_filter_combines_with_aggregation(client, tagged):
    wanted = {"host": ["a", "b"]}
    chosen = [(t, v) for s, t, v in tagged if matches(SERIES[s], wanted)]
    hourly = expected_buckets(chosen, "sum", T0, TAGGED_END, width=HOUR)
    rows = query(client, metric="temp", tags=wanted, aggregation="sum", interval="1 hour",
                 **RANGE)
    assert pairs(rows) == hourly
    whole = query(client, metric="temp", tags=wanted, aggregation="avg", **RANGE)
    assert pairs(whole) == [(T0, pytest.approx(sum(v for _, v in chosen) / len(chosen)))]


# --- group_by ------------------------------------------------------------------------------


def group_of(series_name: str, keys: list[str]) -> tuple:
    return tuple(SERIES[series_name].get(k) for k in keys)


def grouped_expectation(data, keys, how, bucket_of):
    groups: dict[tuple, list] = defaultdict(list)
    for s, t, v in sorted(data, key=lambda p: p[1]):
        groups[(group_of(s, keys), bucket_of(t))].append(v)
    agg = {"sum": sum, "count": len, "avg": lambda vs: sum(vs) / len(vs), "max": max}[how]
    return {key: agg(vs) for key, vs in groups.items()}


def test_group_by_with_interval_gives_a_row_per_group_and_bucket(client, tagged):
    for keys, how in ((["host"], "sum"), (["dc", "host"], "count"), (["dc"], "max")):
        rows = query(client, metric="temp", group_by=keys, aggregation=how,
                     interval="1 hour", **RANGE)
        assert_tags_then_time_order(rows, keys)
        want = grouped_expectation(tagged, keys, how, hour_of)
        assert rows_by_group(rows, keys) == want, keys
        # Series lacking a key form their own group, shown as null.
        assert any(None in group for group, _ in want)


def test_group_by_without_interval_gives_one_row_per_group_stamped_with_start(client, tagged):
    keys = ["host"]
    start = T0 + timedelta(minutes=30)
    inside = [p for p in tagged if p[1] >= start]
    rows = query(client, metric="temp", group_by=keys, aggregation="avg",
                 start_time=iso(start), end_time=iso(TAGGED_END))
    assert_tags_then_time_order(rows, keys)
    want = grouped_expectation(inside, keys, "avg", lambda _t: start)
    got = rows_by_group(rows, keys)
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value), key
    assert {g for g, _ in got} == {("a",), ("b",), ("c",), (None,)}


def test_group_by_on_raw_points_tags_each_point_and_orders_by_tags_then_time(client, tagged):
    keys = ["host", "dc"]
    rows = query(client, metric="temp", group_by=keys, **RANGE)
    assert_tags_then_time_order(rows, keys, strict=False)

    def neutral(x):  # any total order, for comparing as multisets
        return (tuple((g is None, g or "") for g in x[0]), x[1], x[2])

    got = [(tuple(r["tags"][k] for k in keys), parse_row_time(r), r["value"]) for r in rows]
    want = [(group_of(s, keys), t, v) for s, t, v in tagged]
    assert sorted(got, key=neutral) == sorted(want, key=neutral)


def test_group_by_combines_with_a_tag_filter(client, tagged):
    rows = query(client, metric="temp", tags={"dc": "x"}, group_by=["host"], aggregation="sum",
                 interval="1 hour", **RANGE)
    chosen = [p for p in tagged if SERIES[p[0]].get("dc") == "x"]
    assert rows_by_group(rows, ["host"]) == grouped_expectation(chosen, ["host"], "sum",
                                                                 hour_of)
    assert {tuple(r["tags"].values()) for r in rows} == {("a",), ("b",)}


@pytest.mark.parametrize("body", [
    {"aggregation": "sum", "interval": "1 hour"},
    {"aggregation": "sum", "interval": "1 hour", "fill": "null"},
    {"aggregation": "count"},
    {},
], ids=["buckets", "filled", "one-row", "raw"])
@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_a_group_by_key_given_twice_answers_as_given_once(client, tagged, body, fmt):
    # Listed twice, a key made rows whose tags object held that key twice (JSON a parser
    # may read either way) and CSV exports with two columns of one name.
    once, twice = ({"metric": "temp", "group_by": keys, "format": fmt, **body, **RANGE}
                   for keys in (["dc", "host"], ["dc", "host", "dc"]))
    answers = [client.post("/query", json=b) for b in (once, twice)]
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[1].data == answers[0].data
