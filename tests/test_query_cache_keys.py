"""Query cache keys: one per distinct answer, stale as soon as a metric's generation moves."""

from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta

import pytest

from tsapi.formats.aggregations import parse_aggregation
from tsapi.formats.intervals import parse_interval
from tsapi.services.query.cache_keys import cached_answer, key_for, metric_prefix
from tsapi.services.query.request import QueryRequest

START = datetime(2024, 3, 1, tzinfo=UTC)
NOW = START + timedelta(days=30)
REQUEST = QueryRequest(metrics=("cpu",), start=START, end=START + timedelta(days=1))

# For each field of QueryRequest, a value other than REQUEST's.
OTHER_VALUES = {
    "metrics": ("mem",), "start": START - timedelta(microseconds=1),
    "end": START + timedelta(days=2), "multi": True, "aggregation": parse_aggregation("p99"),
    "interval": parse_interval("15m"), "timezone": "Europe/Berlin",
    "tags": {"host": ("a", "b")}, "group_by": ("host",), "fill": "previous",
    "descending": True, "limit": 5, "cursor": "abc", "format": "csv",
}


class Generations:
    """The part of ResponseCache the key needs: the epoch, then each metric's generation."""

    def __init__(self, answer):
        self.answer = answer
        self.asked: list[list[str]] = []

    def lookup(self, names, key_for):
        """As ResponseCache.lookup: the key for the generations, and a miss."""
        self.asked.append(names)
        return (None if self.answer is None else key_for(self.answer)), None


def test_the_same_request_gets_the_same_key():
    same = QueryRequest(metrics=("cpu",), start=START, end=START + timedelta(days=1))
    assert key_for(REQUEST, "json", [0, 1]) == key_for(same, "json", [0, 1])


def test_every_field_of_the_request_is_part_of_the_key():
    assert {f.name for f in fields(QueryRequest)} == set(OTHER_VALUES), "a field lacks a case"
    base = key_for(REQUEST, "json", [0, 1])
    keys = {name: key_for(replace(REQUEST, **{name: value}), "json", [0, 1])
            for name, value in OTHER_VALUES.items()}
    assert base not in keys.values()
    assert len(set(keys.values())) == len(keys)


def test_each_format_has_its_own_key():
    assert len({key_for(REQUEST, fmt, [0, 1]) for fmt in ("json", "csv", "ndjson")}) == 3


def test_a_moved_generation_or_epoch_gives_a_new_key():
    assert len({key_for(REQUEST, "json", g) for g in ([0, 1], [0, 2], [1, 1])}) == 3


def test_keys_of_a_query_start_with_its_first_metrics_prefix():
    two = replace(REQUEST, metrics=("cpu", "mem"), multi=True)
    key = key_for(two, "json", [0, 4, 7])
    assert key.startswith(metric_prefix("cpu"))
    assert key.startswith("query:cpu:0.4.7:")
    assert not key.startswith(metric_prefix("cp"))


def test_generations_are_asked_for_every_metric_of_the_request():
    cache = Generations([0, 3, 5])
    two = replace(REQUEST, metrics=("cpu", "mem"), multi=True)
    assert cached_answer(two, "json", cache, now=NOW)[0] == key_for(two, "json", [0, 3, 5])
    assert cache.asked == [["cpu", "mem"]]


def test_nothing_is_cached_while_the_cache_cannot_vouch_for_generations():
    assert cached_answer(REQUEST, "json", Generations(None), now=NOW) == (None, None)


@pytest.mark.parametrize("end", [NOW + timedelta(microseconds=1), NOW + timedelta(days=1)])
def test_a_range_reaching_into_the_future_is_not_cached(end):
    cache = Generations([0, 1])
    assert cached_answer(replace(REQUEST, end=end), "json", cache, now=NOW) == (None, None)
    assert cache.asked == []


def test_a_range_ending_now_is_cached():
    assert cached_answer(replace(REQUEST, end=NOW), "json", Generations([0, 1]), now=NOW)[0]
