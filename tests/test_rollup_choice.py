"""Which rollup level a request may read (pure: no database)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tsapi.formats.aggregations import parse_aggregation
from tsapi.formats.intervals import parse_interval
from tsapi.services.query.planner import BucketPlan, RollupPlan, plan_query
from tsapi.services.query.request import QueryRequest
from tsapi.services.query.rollup_choice import choose_level, zone_aligned
from tsapi.store.catalog import Metric

NUMBER = Metric(1, "temp", "number")
TEXT = Metric(2, "state", "string")
YEAR = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


def _request(agg="avg", interval="1h", timezone=None, span=YEAR):
    return QueryRequest(("temp",), *span, aggregation=parse_aggregation(agg),
                        interval=parse_interval(interval) if interval else None,
                        timezone=timezone)


@pytest.mark.parametrize(("interval", "timezone", "level"), [
    ("1h", None, "1h"), ("1d", "UTC", "1h"), ("1mo", None, "1h"), ("15m", None, "1m"),
    ("90m", None, "1m"), ("30s", None, None), (None, "Asia/Kolkata", "1h"),
    ("1d", "Europe/Berlin", "1h"), ("1h", "America/New_York", "1h"),
    ("1h", "Asia/Kolkata", "1m"), ("1d", "Asia/Kathmandu", "1m"),
    ("1h", "Australia/Lord_Howe", "1m"),  # +10:30, and a half-hour DST shift
])
def test_the_coarsest_level_whose_buckets_line_up_is_chosen(interval, timezone, level):
    chosen = choose_level(_request(interval=interval, timezone=timezone), [NUMBER])
    assert (chosen.name if chosen else None) == level


@pytest.mark.parametrize("agg", ["median", "p99", "count_distinct", "rate", "increase",
                                 "delta"])
def test_aggregations_that_do_not_combine_read_raw_points(agg):
    assert choose_level(_request(agg=agg), [NUMBER]) is None


def test_string_metrics_read_raw_points():
    assert choose_level(_request(agg="count"), [NUMBER, TEXT]) is None


def test_local_mean_time_is_not_aligned_even_to_minutes():
    old = (datetime(1880, 1, 1, tzinfo=UTC), datetime(1880, 3, 1, tzinfo=UTC))
    assert not zone_aligned("Europe/Amsterdam", 60, *old)  # +00:19:32 then
    assert zone_aligned("Europe/Amsterdam", 3600, *YEAR)


def test_the_planner_makes_a_rollup_plan_only_when_asked_to():
    request = _request()
    assert isinstance(plan_query(request, "json", [NUMBER], 100, rollups=True), RollupPlan)
    assert isinstance(plan_query(request, "json", [NUMBER], 100), BucketPlan)
