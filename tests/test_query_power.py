"""POST /query, issue 4 features: tag filters, group_by, the new aggregations (percentiles,
counters, string-friendly ones), interval shorthand, time zones across DST and gap filling.
Every expectation is computed here in plain Python."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import redis
import sqlalchemy as sa
from helpers import (
    assert_problem,
    counter_steps,
    error_fields,
    expected_buckets,
    ingest,
    iso,
    parse_row_time,
    percentile_cont,
    point,
    query,
    stddev_samp,
)

from tsapi import create_app

T0 = datetime(2024, 3, 10, tzinfo=UTC)
HOUR = timedelta(hours=1)
BERLIN = ZoneInfo("Europe/Berlin")


def ask(client, **body):
    return client.post("/query", json=body)


def hour_of(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def pairs(rows: list[dict]) -> list[tuple[datetime, object]]:
    return [(parse_row_time(r), r["value"]) for r in rows]


def assert_values_match(got: list, want: list, context=None) -> None:
    assert len(got) == len(want), (context, got, want)
    for g, w in zip(got, want, strict=True):
        if w is None or isinstance(w, str):
            assert g == w, (context, got, want)
        else:
            assert g == pytest.approx(w, rel=1e-9, abs=1e-12), (context, got, want)


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


def assert_tags_then_time_order(rows: list[dict], keys: list[str], strict: bool = True):
    """Groups are contiguous and sorted (missing values may sort first or last), and times
    rise within each group."""
    seen: list[tuple] = []
    last_time = None
    for row in rows:
        assert set(row["tags"]) == set(keys), row
        group = tuple(row["tags"][k] for k in keys)
        t = parse_row_time(row)
        if not seen or seen[-1] != group:
            assert group not in seen, f"group {group} is not contiguous"
            seen.append(group)
        else:
            assert t > last_time if strict else t >= last_time, (group, t, last_time)
        last_time = t

    def nulls(first: bool):
        return lambda g: tuple(((v is None) != first, v or "") for v in g)

    assert seen in (sorted(seen, key=nulls(True)), sorted(seen, key=nulls(False))), seen


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


def reference(how: str, values: list):
    """An aggregate of values given in time order."""
    if how == "first":
        return values[0]
    if how == "last":
        return values[-1]
    if how == "median":
        return percentile_cont(values, 0.5)
    if how == "stddev":
        return stddev_samp(values)
    if how == "count_distinct":
        return len(set(values))
    if how == "count":
        return len(values)
    if how == "delta":
        return values[-1] - values[0]
    if how.startswith("p"):
        return percentile_cont(values, float(how[1:]) / 100)
    raise ValueError(how)


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
                        [reference(how, by_hour[b]) for b in sorted(by_hour)], how)

    whole = query(client, metric="load", aggregation=how, start_time=iso(T0),
                  end_time=iso(AGG_END))
    assert [parse_row_time(r) for r in whole] == [T0], how
    assert_values_match([whole[0]["value"]], [reference(how, [v for _, _, v in in_order])], how)
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


# --- time zones ----------------------------------------------------------------------------


def local_midnight(t: datetime, zone: ZoneInfo) -> datetime:
    local = t.astimezone(zone)
    return datetime(local.year, local.month, local.day, tzinfo=zone)


def half_hourly(start: datetime, end: datetime) -> list[datetime]:
    n = int((end - start) / timedelta(minutes=30))
    return [start + timedelta(minutes=30 * i) for i in range(n)]


@pytest.mark.parametrize(("first_day", "last_day", "times", "counts"), [
    ((2024, 3, 29), (2024, 4, 2),
     ["2024-03-29T00:00:00+01:00", "2024-03-30T00:00:00+01:00", "2024-03-31T00:00:00+01:00",
      "2024-04-01T00:00:00+02:00"], [48, 48, 46, 48]),
    ((2024, 10, 26), (2024, 10, 29),
     ["2024-10-26T00:00:00+02:00", "2024-10-27T00:00:00+02:00", "2024-10-28T00:00:00+01:00"],
     [48, 50, 48]),
], ids=["spring-23h", "autumn-25h"])
def test_daily_buckets_follow_local_midnight_across_dst(client, first_day, last_day, times,
                                                        counts):
    start = datetime(*first_day, tzinfo=BERLIN).astimezone(UTC)
    end = datetime(*last_day, tzinfo=BERLIN).astimezone(UTC)
    stamps = half_hourly(start, end)
    ingest(client, [point(iso(t), "temp", 1.0) for t in stamps])
    rows = query(client, metric="temp", aggregation="count", interval="1 day",
                 timezone="Europe/Berlin", start_time=iso(start), end_time=iso(end))
    # Independently: count the points per local calendar day.
    per_day: dict[datetime, int] = defaultdict(int)
    for t in stamps:
        per_day[local_midnight(t, BERLIN)] += 1
    assert [d.isoformat() for d in sorted(per_day)] == times
    assert [per_day[d] for d in sorted(per_day)] == counts
    assert rows == [{"time": t, "value": c} for t, c in zip(times, counts, strict=True)]


def test_rate_over_a_dst_day_divides_by_its_real_length(client):
    start = datetime(2024, 3, 30, tzinfo=BERLIN).astimezone(UTC)
    end = datetime(2024, 4, 2, tzinfo=BERLIN).astimezone(UTC)
    stamps = half_hourly(start, end)
    ingest(client, [point(iso(t), "requests", float(i)) for i, t in enumerate(stamps)])
    rows = query(client, metric="requests", aggregation="rate", interval="1d",
                 timezone="Europe/Berlin", start_time=iso(start), end_time=iso(end))
    steps: dict[datetime, float] = defaultdict(float)
    for t, step in counter_steps([(t, float(i)) for i, t in enumerate(stamps)]):
        steps[local_midnight(t, BERLIN)] += step
    want = []
    for day, inc in sorted(steps.items()):
        following = local_midnight(day.astimezone(UTC) + timedelta(hours=26), BERLIN)
        length = (following.astimezone(UTC) - day.astimezone(UTC)).total_seconds()
        want.append((day.isoformat(), inc / length))
    assert [w[1] for w in want][1] == pytest.approx(46 / (23 * 3600))  # the 23-hour day
    assert [r["time"] for r in rows] == [d for d, _ in want]
    assert_values_match([r["value"] for r in rows], [v for _, v in want])


def test_monthly_buckets_align_to_the_local_month_start(client):
    stamps = {
        "2024-02-29T22:30:00Z": 1.0,   # 23:30 on 29 February in Berlin
        "2024-02-29T23:30:00Z": 2.0,   # 00:30 on 1 March in Berlin
        "2024-03-31T21:30:00Z": 4.0,   # 23:30 on 31 March (summer time)
        "2024-03-31T22:30:00Z": 8.0,   # 00:30 on 1 April
        "2024-10-31T22:59:59Z": 16.0,  # 23:59:59 on 31 October (winter time again)
        "2024-10-31T23:00:00Z": 32.0,  # midnight, 1 November
    }
    ingest(client, [point(t, "temp", v) for t, v in stamps.items()])
    rows = query(client, metric="temp", aggregation="sum", interval="1mo",
                 timezone="Europe/Berlin", start_time="2024-01-01T00:00:00Z",
                 end_time="2025-01-01T00:00:00Z")
    sums: dict[datetime, float] = defaultdict(float)
    for t, v in stamps.items():
        local = datetime.fromisoformat(t).astimezone(BERLIN)
        sums[datetime(local.year, local.month, 1, tzinfo=BERLIN)] += v
    assert rows == [{"time": m.isoformat(), "value": v} for m, v in sorted(sums.items())]
    assert [r["time"] for r in rows] == [
        "2024-02-01T00:00:00+01:00", "2024-03-01T00:00:00+01:00", "2024-04-01T00:00:00+02:00",
        "2024-10-01T00:00:00+02:00", "2024-11-01T00:00:00+01:00"]
    filled = query(client, metric="temp", aggregation="sum", interval="1 month", fill="zero",
                   timezone="Europe/Berlin", start_time="2023-12-31T23:00:00Z",
                   end_time="2024-12-31T23:00:00Z")
    months = [datetime(2024, m, 1, tzinfo=BERLIN) for m in range(1, 13)]
    assert filled == [{"time": m.isoformat(), "value": sums.get(m, 0)} for m in months]


def test_hourly_buckets_in_a_half_hour_zone_start_on_local_hours(client):
    ingest(client, [point("2024-03-10T10:10:00Z", "temp", 1.0),
                    point("2024-03-10T10:29:59Z", "temp", 2.0),
                    point("2024-03-10T10:30:00Z", "temp", 4.0)])
    rows = query(client, metric="temp", aggregation="sum", interval="1h",
                 timezone="Asia/Kolkata", start_time=iso(T0), end_time=iso(T0 + 24 * HOUR))
    assert rows == [{"time": "2024-03-10T15:00:00+05:30", "value": 3.0},
                    {"time": "2024-03-10T16:00:00+05:30", "value": 4.0}]
    whole = query(client, metric="temp", aggregation="sum", timezone="Asia/Kolkata",
                  start_time=iso(T0), end_time=iso(T0 + 24 * HOUR))
    assert pairs(whole) == [(T0, 7.0)]  # stamped with start_time, whatever the zone


def test_invalid_timezone_is_422_naming_timezone(client):
    ingest(client, [point(iso(T0), "temp", 1.0)])
    for zone in ["Mars/Olympus", "Europe/Berlinn", "", "../etc/passwd", 5,
                 "Europe/Berlin; drop table points"]:
        problem = assert_problem(ask(client, metric="temp", aggregation="count",
                                     interval="1 day", timezone=zone, start_time=iso(T0),
                                     end_time=iso(T0 + 24 * HOUR)), 422)
        assert "timezone" in error_fields(problem), zone
    assert query(client, metric="temp", start_time=iso(T0), end_time=iso(T0 + HOUR)) == [
        {"time": "2024-03-10T00:00:00+00:00", "value": 1.0}]


# --- fill ----------------------------------------------------------------------------------

FILL_END = T0 + 8 * HOUR
# Buckets 1, 2 and 5 hold points (bucket 1 averages to 25); the last point before the range
# sits on a bucket start (23:00 the day before), so "in time" and "by bucket start" agree.
FILL_POINTS = [(T0 - 4 * HOUR, 999.0), (T0 - HOUR, 10.0),
               (T0 + HOUR, 20.0), (T0 + timedelta(minutes=90), 30.0),
               (T0 + timedelta(hours=2, minutes=45), 40.0),
               (T0 + timedelta(hours=5, minutes=10), 10.0),
               (FILL_END, 555.0)]
FILL_EXPECTED = {
    "null": [None, 25.0, 40.0, None, None, 10.0, None, None],
    "zero": [0, 25.0, 40.0, 0, 0, 10.0, 0, 0],
    "previous": [10.0, 25.0, 40.0, 40.0, 40.0, 10.0, 10.0, 10.0],
    # bucket 0: halfway between the seed (23:00, 10) and bucket 1 (01:00, 25); buckets 3
    # and 4: a third and two thirds of the way from 40 to 10; nothing after bucket 5.
    "linear": [17.5, 25.0, 40.0, 30.0, 20.0, 10.0, None, None],
}


def reference_fill(buckets: list[datetime], known: dict, mode: str, seed=None) -> list:
    if mode in ("null", "zero"):
        return [known.get(b, None if mode == "null" else 0) for b in buckets]
    if mode == "previous":
        out, current = [], seed[1] if seed else None
        for b in buckets:
            current = known.get(b, current)
            out.append(current)
        return out
    anchors = sorted(([seed] if seed else []) + list(known.items()))
    out = []
    for b in buckets:
        if b in known:
            out.append(known[b])
            continue
        before = [a for a in anchors if a[0] < b]
        after = [a for a in anchors if a[0] > b]
        if before and after:
            (t0, v0), (t1, v1) = before[-1], after[0]
            out.append(v0 + (v1 - v0) * ((b - t0) / (t1 - t0)))
        else:
            out.append(None)
    return out


@pytest.fixture
def fill_data(client):
    ingest(client, [point(iso(t), "temp", v) for t, v in FILL_POINTS])


def test_fill_gives_one_row_per_bucket_over_the_range_seeded_before_it(client, fill_data):
    buckets = [T0 + h * HOUR for h in range(8)]
    known = {T0 + HOUR: 25.0, T0 + 2 * HOUR: 40.0, T0 + 5 * HOUR: 10.0}
    for mode, want in FILL_EXPECTED.items():
        rows = query(client, metric="temp", aggregation="avg", interval="1 hour", fill=mode,
                     start_time=iso(T0), end_time=iso(FILL_END))
        assert [parse_row_time(r) for r in rows] == buckets, mode
        assert [r["value"] for r in rows] == pytest.approx(want), mode
        assert reference_fill(buckets, known, mode, (T0 - HOUR, 10.0)) == pytest.approx(want)


def test_fill_none_is_the_default_and_leaves_empty_buckets_out(client, fill_data):
    body = {"metric": "temp", "aggregation": "avg", "interval": "1 hour",
            "start_time": iso(T0), "end_time": iso(FILL_END)}
    rows = query(client, **body)
    assert pairs(rows) == [(T0 + HOUR, 25.0), (T0 + 2 * HOUR, 40.0), (T0 + 5 * HOUR, 10.0)]
    assert query(client, fill="none", **body) == rows


def test_fill_without_a_point_before_the_range_has_no_seed(client):
    ingest(client, [point(iso(t), "temp", v) for t, v in FILL_POINTS if t >= T0])
    for mode in ("previous", "linear"):
        rows = query(client, metric="temp", aggregation="avg", interval="1 hour", fill=mode,
                     start_time=iso(T0), end_time=iso(FILL_END))
        want = [None] + FILL_EXPECTED[mode][1:]
        assert [r["value"] for r in rows] == pytest.approx(want), mode


FILL_RANGES = [  # (start, end, first bucket, last bucket)
    (T0 + timedelta(minutes=20), FILL_END, T0, FILL_END - HOUR),  # start inside a bucket
    (T0, FILL_END + timedelta(microseconds=1), T0, FILL_END),  # end just past an edge
    (T0 - timedelta(microseconds=1), FILL_END - timedelta(minutes=59), T0 - HOUR,
     T0 + 7 * HOUR),  # both off an edge
]


def test_fill_covers_the_bucket_of_start_to_the_bucket_of_end_minus_1us(client, fill_data):
    for start, end, first, last in FILL_RANGES:
        rows = query(client, metric="temp", aggregation="count", interval="1 hour",
                     fill="zero", start_time=iso(start), end_time=iso(end))
        n = int((last - first) / HOUR) + 1
        assert [parse_row_time(r) for r in rows] == [first + i * HOUR for i in range(n)], \
            (start, end)
        counts: dict[datetime, int] = defaultdict(int)
        for t, _ in FILL_POINTS:
            if start <= t < end:
                counts[hour_of(t)] += 1
        assert [r["value"] for r in rows] == [counts.get(first + i * HOUR, 0)
                                              for i in range(n)], (start, end)


def test_linear_fill_interpolates_in_time_across_a_dst_day(client):
    # Days of 24 h then 23 h: 31 March lies 24/47 of the way from 30 March to 1 April.
    ingest(client, [point("2024-03-30T12:00:00+01:00", "temp", 0.0),
                    point("2024-04-01T12:00:00+02:00", "temp", 47.0)])
    start = datetime(2024, 3, 30, tzinfo=BERLIN).astimezone(UTC)
    end = datetime(2024, 4, 2, tzinfo=BERLIN).astimezone(UTC)
    rows = query(client, metric="temp", aggregation="max", interval="1 day", fill="linear",
                 timezone="Europe/Berlin", start_time=iso(start), end_time=iso(end))
    assert [r["time"] for r in rows] == ["2024-03-30T00:00:00+01:00",
                                         "2024-03-31T00:00:00+01:00",
                                         "2024-04-01T00:00:00+02:00"]
    assert [r["value"] for r in rows] == pytest.approx([0.0, 24.0, 47.0])


def test_linear_fill_works_with_any_aggregation(client):
    ingest(client, [point(iso(T0 + timedelta(minutes=m)), "temp", float(v))
                    for m, v in ((0, 1), (10, 3), (20, 6), (190, 6), (200, 10), (210, 30))])
    for how in ("count", "rate", "p90", "sum"):
        check_linear_fill(client, how)


def check_linear_fill(client, how):
    rows = query(client, metric="temp", aggregation=how, interval="1 hour", fill="linear",
                 start_time=iso(T0), end_time=iso(T0 + 4 * HOUR))
    values = {T0: [1.0, 3.0, 6.0], T0 + 3 * HOUR: [6.0, 10.0, 30.0]}
    if how == "rate":
        first = {T0: 5.0 / 3600, T0 + 3 * HOUR: 24.0 / 3600}  # 6 -> 6 at 03:10 adds nothing
    else:
        first = {b: {"count": len, "sum": sum, "p90": lambda v: percentile_cont(v, 0.9)}[how](vs)
                 for b, vs in values.items()}
    buckets = [T0 + h * HOUR for h in range(4)]
    assert [parse_row_time(r) for r in rows] == buckets, how
    assert [r["value"] for r in rows] == pytest.approx(reference_fill(buckets, first, "linear")), \
        how


GROUP_FILL_POINTS = [("a", T0 - HOUR, 10.0), ("a", T0 + HOUR, 20.0), ("a", T0 + 3 * HOUR, 40.0),
                     ("b", T0 + 2 * HOUR, 5.0), ("b", T0 + 3 * HOUR, 8.0)]


def test_fill_with_group_by_fills_each_group(client):
    ingest(client, [point(iso(t), "temp", v, host=h) for h, t, v in GROUP_FILL_POINTS])
    for mode in ("null", "zero", "previous", "linear"):
        check_group_fill(client, mode)


def check_group_fill(client, mode):
    points_ = GROUP_FILL_POINTS
    rows = query(client, metric="temp", aggregation="max", interval="1 hour", fill=mode,
                 group_by=["host"], start_time=iso(T0), end_time=iso(T0 + 5 * HOUR))
    assert_tags_then_time_order(rows, ["host"])
    buckets = [T0 + h * HOUR for h in range(5)]
    seeds = {"a": (T0 - HOUR, 10.0), "b": None}
    for host in ("a", "b"):
        mine = [r for r in rows if r["tags"] == {"host": host}]
        assert [parse_row_time(r) for r in mine] == buckets, (mode, host)
        known = {t: v for h, t, v in points_ if h == host and t >= T0}
        want = reference_fill(buckets, known, mode, seeds[host])
        assert [r["value"] for r in mine] == pytest.approx(want), (mode, host)
    assert len(rows) == 10, mode


def test_fill_without_aggregation_and_interval_or_unknown_is_422_naming_fill(client):
    ingest(client, [point(iso(T0), "temp", 1.0)])
    for body in ({"aggregation": "avg", "fill": "zero"},  # no interval
                 {"interval": "1 hour", "fill": "null"},  # no aggregation
                 {"fill": "previous"},
                 {"aggregation": "avg", "interval": "1 hour", "fill": "backward"}):
        problem = assert_problem(ask(client, metric="temp", start_time=iso(T0),
                                     end_time=iso(FILL_END), **body), 422)
        assert "fill" in error_fields(problem), body


# --- both backends give identical answers in time zones ---------------------------------------


@pytest.fixture
def clients_by_backend(database_urls, redis_server):
    """An app on each backend, on emptied tables, each with a Redis database of its own."""
    clients, apps = {}, []
    for n, (backend, url) in enumerate(sorted(database_urls.items()), start=1):
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("TRUNCATE points, series, metrics"))
        engine.dispose()
        redis.Redis.from_url(redis_server.url(n)).flushdb()
        app = create_app({"TESTING": True, "DATABASE_URL": url,
                          "REDIS_URL": redis_server.url(n)})
        apps.append(app)
        clients[backend] = app.test_client()
    yield clients
    for app in apps:
        app.extensions["tsapi.db"].dispose()


DST_WINDOWS = [(datetime(2024, 3, 24, 12, tzinfo=UTC), datetime(2024, 4, 4, tzinfo=UTC)),
               (datetime(2024, 10, 21, 5, tzinfo=UTC), datetime(2024, 11, 6, tzinfo=UTC))]


def dst_window_points(seed: int) -> list[tuple[str, datetime, float, float]]:
    """(host, time, gauge value, counter value) at random steps through both DST changes;
    counters climb and now and then reset."""
    rng = random.Random(seed)
    out = []
    for host in ("a", "b", "c"):
        counter = 0.0
        for start, end in DST_WINDOWS:
            t = start + timedelta(minutes=rng.randrange(60), microseconds=rng.randrange(10**6))
            while t < end:
                counter = 0.0 if rng.random() < 0.03 else counter + rng.randint(0, 40)
                out.append((host, t, rng.randint(-400, 400) / 4, counter))
                t += timedelta(minutes=rng.randrange(20, 170), microseconds=rng.randrange(10**6))
    assert len({t for _, t, _, _ in out}) == len(out), "first/last need unique times"
    return out


CROSS_AGGREGATIONS = [
    ("temp", "median", {}), ("temp", "p99.9", {"group_by": ["host"]}), ("temp", "stddev", {}),
    ("temp", "first", {}), ("temp", "last", {}), ("temp", "count_distinct", {}),
    ("temp", "delta", {"group_by": ["host"]}), ("temp", "avg", {"fill": "linear"}),
    ("temp", "max", {"fill": "previous"}), ("requests", "increase", {"group_by": ["host"]}),
    ("requests", "rate", {}),
]
# Every aggregation on Berlin days; a few on other zones and widths (half-hour offsets,
# DST changes on other dates, Lord Howe's half-hour DST step).
CROSS_QUERIES = [("Europe/Berlin", "1 day", CROSS_AGGREGATIONS)] + [
    (zone, interval, [CROSS_AGGREGATIONS[i] for i in (0, 3, 7, 10)])
    for zone, interval in (("Europe/Berlin", "1 week"), ("Europe/Berlin", "1 month"),
                           ("Asia/Kolkata", "1h"), ("America/St_Johns", "6 hours"),
                           ("Australia/Lord_Howe", "1d"))
]


def test_both_backends_give_identical_answers_in_time_zones(clients_by_backend):
    data = dst_window_points(11)
    for client in clients_by_backend.values():
        ingest(client, [point(iso(t), "temp", v, host=h) for h, t, v, _ in data])
        ingest(client, [point(iso(t), "requests", c, host=h) for h, t, _, c in data])
    start, end = iso(DST_WINDOWS[0][0]), iso(DST_WINDOWS[1][1])
    for zone, interval, aggregations in CROSS_QUERIES:
        for metric, how, extra in aggregations:
            body = {"metric": metric, "aggregation": how, "interval": interval,
                    "timezone": zone, "start_time": start, "end_time": end, **extra}
            answers = {b: query(c, **body) for b, c in clients_by_backend.items()}
            tsdb, plain = answers["timescaledb"], answers["postgresql"]
            assert tsdb, body
            assert [(r["time"], r.get("tags")) for r in tsdb] == \
                [(r["time"], r.get("tags")) for r in plain], body
            assert_values_match([r["value"] for r in tsdb], [r["value"] for r in plain], body)


def test_daily_berlin_aggregates_match_python_through_both_dst_changes(client):
    data = dst_window_points(12)
    ingest(client, [point(iso(t), "temp", v, host=h) for h, t, v, _ in data])
    start, end = DST_WINDOWS[0][0], DST_WINDOWS[1][1]
    by_day: dict[datetime, list] = defaultdict(list)
    for _, t, v, _ in sorted(data, key=lambda p: p[1]):
        by_day[local_midnight(t, BERLIN)].append(v)
    for how in ("median", "p95", "stddev", "first", "last", "count_distinct", "delta"):
        rows = query(client, metric="temp", aggregation=how, interval="1 day",
                     timezone="Europe/Berlin", start_time=iso(start), end_time=iso(end))
        assert [r["time"] for r in rows] == [d.isoformat() for d in sorted(by_day)], how
        assert_values_match([r["value"] for r in rows],
                            [reference(how, by_day[d]) for d in sorted(by_day)], how)
