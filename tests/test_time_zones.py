"""POST /query with a timezone: buckets start at local midnight, local month starts and local
hours across DST changes, rates divide by a bucket's real length, and both backends answer
alike. Expectations are computed in Python."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from helpers import (
    ask,
    assert_problem,
    assert_values_match,
    counter_steps,
    error_fields,
    ingest,
    iso,
    point,
    query,
    reference_aggregate,
)
from helpers import time_value_pairs as pairs

T0 = datetime(2024, 3, 10, tzinfo=UTC)
HOUR = timedelta(hours=1)
BERLIN = ZoneInfo("Europe/Berlin")


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


# --- both backends give identical answers in time zones ---------------------------------------


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
                            [reference_aggregate(how, by_day[d]) for d in sorted(by_day)], how)
