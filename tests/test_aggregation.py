"""POST /query, issue 4 features: tag filters, group_by, the new aggregations (percentiles,
string-friendly ones, counters) and interval shorthand. Expectations are computed in Python;
time zones and fill are in test_query_power_time.py."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from helpers import (
    ask,
    assert_problem,
    assert_tags_then_time_order,
    assert_values_match,
    counter_steps,
    expected_buckets,
    hour_of,
    ingest,
    iso,
    parse_row_time,
    percentile_cont,
    point,
    query,
    reference_aggregate,
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


def rows_by_group(rows: list[dict], keys: list[str]) -> dict:
    out = {}
    for row in rows:
        key = (tuple(row["tags"][k] for k in keys), parse_row_time(row))
        assert key not in out, f"duplicate row {key}"
        out[key] = row["value"]
    return out


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


# --- the new aggregations ------------------------------------------------------------------

AGG_END = T0 + 5 * HOUR
POINTS_PER_HOUR = {0: 7, 1: 12, 2: 1, 4: 5}  # hour 3 stays empty


def numeric_points(seed: int = 7) -> list[tuple[str, datetime, float]]:
    """(host, time, value) with unique times; values from a small set of quarters so some
    repeat (count_distinct) and sums stay exact."""
    rng = random.Random(seed)
    out = []
    for hour, n in POINTS_PER_HOUR.items():
        minutes = rng.sample(range(60), n)
        for m in minutes:
            t = T0 + hour * HOUR + timedelta(minutes=m, microseconds=rng.randrange(10**6))
            out.append((rng.choice("ab"), t, rng.randint(-12, 12) / 4))
    return out


NEW_AGGREGATIONS = ["first", "last", "median", "stddev", "p90", "p95", "p99", "p99.9",
                    "count_distinct", "delta"]


def test_new_aggregations_per_bucket_and_over_the_range(client):
    data = numeric_points()
    outside = [("a", T0 - timedelta(microseconds=1), 1000.0), ("b", AGG_END, -1000.0)]
    ingest(client, [point(iso(t), "load", v, host=h) for h, t, v in data + outside])
    in_order = sorted(data, key=lambda p: p[1])
    by_hour: dict[datetime, list] = defaultdict(list)
    for _, t, v in in_order:
        by_hour[hour_of(t)].append(v)
    for how in NEW_AGGREGATIONS:
        check_new_aggregation(client, how, in_order, by_hour)


def check_new_aggregation(client, how, in_order, by_hour):
    rows = query(client, metric="load", aggregation=how, interval="1 hour",
                 start_time=iso(T0), end_time=iso(AGG_END))
    assert [parse_row_time(r) for r in rows] == sorted(by_hour), how
    assert_values_match([r["value"] for r in rows],
                        [reference_aggregate(how, by_hour[b]) for b in sorted(by_hour)], how)

    whole = query(client, metric="load", aggregation=how, start_time=iso(T0),
                  end_time=iso(AGG_END))
    assert [parse_row_time(r) for r in whole] == [T0], how
    everything = [v for _, _, v in in_order]
    assert_values_match([whole[0]["value"]], [reference_aggregate(how, everything)], how)
    if how == "count_distinct":
        assert all(isinstance(r["value"], int) for r in rows + whole)


def test_stddev_of_a_single_point_is_null(client):
    ingest(client, [point(iso(T0 + timedelta(minutes=5)), "load", 4.0)])
    assert query(client, metric="load", aggregation="stddev", start_time=iso(T0),
                 end_time=iso(AGG_END)) == [{"time": "2024-03-10T00:00:00+00:00", "value": None}]


def test_percentiles_interpolate_linearly_between_the_closest_ranks(client):
    # Hand-checked: with 5 values, pNN sits at rank NN/100 * 4 (0-based).
    values = [10.0, 1.0, 4.0, 3.0, 2.0]
    ingest(client, [point(iso(T0 + timedelta(minutes=i)), "load", v)
                    for i, v in enumerate(values)])
    expected = {"median": 3.0, "p90": 7.6, "p95": 8.8, "p99": 9.76, "p99.9": 9.976,
                "p50": 3.0, "p12.5": 1.5}
    for how, want in expected.items():
        rows = query(client, metric="load", aggregation=how, start_time=iso(T0),
                     end_time=iso(AGG_END))
        assert rows[0]["value"] == pytest.approx(want, rel=1e-12), how
        assert percentile_cont(values, 0.5 if how == "median" else float(how[1:]) / 100) \
            == pytest.approx(want, rel=1e-12)


STATES = [("on", 1), ("off", 20), ("on", 40), ("idle", 70), ("idle", 75), ("on", 200)]


STRING_AGGREGATES = {  # how: (per hour, over the range), counted by hand from STATES
    "count": ([3, 2, 1], 6),
    "first": (["on", "idle", "on"], "on"),
    "last": (["on", "idle", "on"], "on"),
    "count_distinct": ([2, 1, 1], 3),
}


def test_string_friendly_aggregations_work_on_string_metrics(client):
    ingest(client, [point(iso(T0 + timedelta(minutes=m)), "state", s, dev=str(m % 2))
                    for s, m in STATES])
    for how, (hourly, whole) in STRING_AGGREGATES.items():
        rows = query(client, metric="state", aggregation=how, interval="1 hour",
                     start_time=iso(T0), end_time=iso(AGG_END))
        assert pairs(rows) == list(zip([T0, T0 + HOUR, T0 + 3 * HOUR], hourly, strict=True)), \
            how
        assert pairs(query(client, metric="state", aggregation=how, start_time=iso(T0),
                           end_time=iso(AGG_END))) == [(T0, whole)], how


def test_first_and_last_pick_by_time_not_by_ingest_order(client):
    ingest(client, [point(iso(T0 + timedelta(minutes=m)), "state", s) for s, m in
                    [("late", 50), ("early", 2), ("middle", 30)]])
    for how, want in (("first", "early"), ("last", "late")):
        assert pairs(query(client, metric="state", aggregation=how, interval="1 hour",
                           start_time=iso(T0), end_time=iso(AGG_END))) == [(T0, want)]


def test_numeric_aggregations_of_a_string_metric_are_400(client):
    ingest(client, [point(iso(T0), "state", "on")])
    for how, interval in itertools.product(
            ["avg", "median", "stddev", "p90", "p99.9", "delta", "increase", "rate", "sum"],
            [None, "1 hour"]):
        body = {"metric": "state", "start_time": iso(T0), "end_time": iso(AGG_END),
                "aggregation": how}
        if interval:
            body["interval"] = interval
        problem = assert_problem(ask(client, **body), 400)
        assert "only supported for numeric metrics" in problem["detail"], (how, interval)


# --- counters: increase, rate, delta ---------------------------------------------------------

COUNTER_END = T0 + 4 * HOUR
COUNTERS = {
    "a": [(-10 * 60, 90.0), (10, 100.0), (20 * 60, 110.0), (40 * 60, 130.0),
          (65 * 60, 5.0),  # reset: counted from zero, +5
          (90 * 60, 20.0), (130 * 60, 20.0), (230 * 60, 50.0), (240 * 60, 70.0)],
    "b": [(5 * 60, 7.0), (50 * 60, 9.0), (60 * 60, 9.0), (150 * 60, 3.0)],  # reset: +3
}


@pytest.fixture
def counters(client):
    ingest(client, [point(iso(T0 + timedelta(seconds=s)), "requests", v, host=h)
                    for h, pts in COUNTERS.items() for s, v in pts])
    return {h: [(T0 + timedelta(seconds=s), v) for s, v in pts
                if T0 <= T0 + timedelta(seconds=s) < COUNTER_END] for h, pts in COUNTERS.items()}


def increase_by(counters_, bucket_of, hosts=None) -> dict:
    acc: dict = defaultdict(float)
    for host, pts in counters_.items():
        if hosts is None or host in hosts:
            for t, step in counter_steps(pts):
                acc[bucket_of(t)] += step
    return dict(sorted(acc.items()))


def counter_query(client, **extra):
    return query(client, metric="requests", start_time=iso(T0), end_time=iso(COUNTER_END),
                 **extra)


def test_increase_per_bucket_is_reset_aware_and_ignores_the_point_before_the_range(
        client, counters):
    rows = counter_query(client, aggregation="increase", interval="1 hour")
    # Hand-checked: hour 0: a 10+20, b 2; hour 1: a 5 (reset) + 15, b 0; hour 2: a 0, b 3
    # (reset); hour 3: a 30. The point at 23:50 the day before and the one at the end of the
    # range take no part.
    assert pairs(rows) == [(T0, 32.0), (T0 + HOUR, 20.0), (T0 + 2 * HOUR, 3.0),
                           (T0 + 3 * HOUR, 30.0)]
    assert dict(pairs(rows)) == increase_by(counters, hour_of)


def test_increase_without_interval_is_the_whole_range(client, counters):
    total = sum(increase_by(counters, hour_of).values())
    assert total == 85.0
    assert pairs(counter_query(client, aggregation="increase")) == [(T0, total)]


def test_rate_is_increase_per_second_of_the_bucket_or_of_the_range(client, counters):
    hourly = counter_query(client, aggregation="rate", interval="1 hour")
    want = increase_by(counters, hour_of)
    assert [parse_row_time(r) for r in hourly] == list(want)
    assert_values_match([r["value"] for r in hourly], [v / 3600 for v in want.values()])
    whole = counter_query(client, aggregation="rate")
    assert [parse_row_time(r) for r in whole] == [T0]
    assert_values_match([whole[0]["value"]], [85.0 / (4 * 3600)])
    quarter = dict(pairs(counter_query(client, aggregation="rate", interval="15m")))
    want = increase_by(counters, lambda t: t.replace(minute=t.minute - t.minute % 15,
                                                     second=0, microsecond=0))
    # 00:00-00:15 holds only the first point of each series: no step, so the spec leaves
    # open whether it is reported (as null or 0) or left out; every other bucket is exact.
    assert quarter.pop(T0, None) in (None, 0)
    assert list(quarter) == list(want)
    assert_values_match(list(quarter.values()), [v / 900 for v in want.values()])


def test_increase_with_group_by_is_per_group(client, counters):
    rows = counter_query(client, aggregation="increase", interval="1 hour", group_by=["host"])
    assert_tags_then_time_order(rows, ["host"])
    got = rows_by_group(rows, ["host"])
    want = {}
    for host in COUNTERS:
        for b, v in increase_by(counters, hour_of, hosts={host}).items():
            want[((host,), b)] = v
    assert got == want


def test_delta_is_last_minus_first_within_the_bucket(client, counters):
    rows = counter_query(client, aggregation="delta", interval="1 hour", tags={"host": "a"})
    # Hand-checked: 130-100, 20-5, 20-20 (one point), 50-50 (one point).
    assert pairs(rows) == [(T0, 30.0), (T0 + HOUR, 15.0), (T0 + 2 * HOUR, 0.0),
                           (T0 + 3 * HOUR, 0.0)]
    whole = counter_query(client, aggregation="delta", tags={"host": "a"})
    assert pairs(whole) == [(T0, 50.0 - 100.0)]


# --- interval shorthand ----------------------------------------------------------------------


SHORTHANDS = [
    ("15m", "15 minutes", {"width": timedelta(minutes=15)}),
    ("1h", "1 hour", {"width": HOUR}),
    ("1d", "1 day", {"width": timedelta(days=1)}),
    ("1w", "1 week", {"width": timedelta(weeks=1)}),
    ("1mo", "1 month", {"months": 1}),
]


def test_interval_shorthand_equals_the_word_form(client):
    start = datetime(2024, 2, 20, tzinfo=UTC)
    data = [(start + timedelta(minutes=37 * i), float(i % 13)) for i in range(1500)]
    ingest(client, [point(iso(t), "temp", v) for t, v in data])
    end = datetime(2024, 3, 25, tzinfo=UTC)
    body = {"metric": "temp", "start_time": iso(start), "end_time": iso(end),
            "aggregation": "sum"}
    for short, words, bucket in SHORTHANDS:
        by_short = query(client, interval=short, **body)
        by_words = query(client, interval=words, **body)
        assert by_short == by_words, short
        assert pairs(by_short) == expected_buckets(data, "sum", start, end, **bucket), short
