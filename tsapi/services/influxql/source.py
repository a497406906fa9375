"""Rows for InfluxQL from tsapi's own /query path: each request is the JSON document a client
would POST to /query, loaded by the /query schema and run by tsapi.services.query."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from tsapi.formats.influxql.predicates import matches
from tsapi.formats.influxql.results import from_ns, to_ns
from tsapi.formats.influxql.tokens import InfluxQLError
from tsapi.formats.intervals import BucketInterval
from tsapi.services.query import run_query
from tsapi.services.runtime import Runtime

# Loads a /query document (a dict) into the arguments run_query takes; the API layer passes
# its /query schema, so both endpoints validate identically.
QueryLoader = Callable[[dict[str, Any]], Any]
MAX_TAG_FILTER_VALUES = 1000


@dataclass(frozen=True)
class Window:
    """A statement's range in nanoseconds, both ends inclusive, as InfluxDB keeps it."""

    start: int
    end: int

    def document(self) -> dict[str, str] | None:
        """start_time/end_time for /query (microseconds, end exclusive); None when empty."""
        start_us = -(-self.start // 1000)
        end_us = self.end // 1000 + 1
        if end_us <= start_us:
            return None
        return {"start_time": from_ns(start_us * 1000).isoformat(),
                "end_time": from_ns(end_us * 1000).isoformat()}


class RowBudget:
    """The rows one InfluxQL request may still read from /query, over all its statements,
    measurements and fields. Each read is bounded (TSAPI_MAX_RAW_ROWS raw rows, or
    TSAPI_MAX_QUERY_CELLS buckets), but a request reads once per field per measurement per
    statement: 16 statements of `SELECT * FROM /.*/` held every read at once."""

    def __init__(self, rows: int):
        self.total = rows
        self.left = rows

    def spend(self, rows: int) -> None:
        self.left -= rows
        if self.left < 0:
            raise InfluxQLError(f"max-select-point limit exceeded: the statements of this "
                                f"request read more than {self.total} rows together; "
                                "narrow the time range, aggregate, or add LIMIT")


@dataclass(frozen=True)
class Row:
    key: tuple[str, ...]  # the group's tag values ('' where a series lacks the key)
    time: int  # nanoseconds
    value: Any


class QuerySource:
    def __init__(self, rt: Runtime, load: QueryLoader, window: Window,
                 timezone: str | None, budget: RowBudget):
        self.rt = rt
        self.load = load
        self.window = window
        self.timezone = timezone
        self.budget = budget
        self.max_raw_rows = rt.limits.max_raw_rows
        self.max_buckets = rt.limits.max_query_buckets

    def reaching_back(self, ns: int) -> QuerySource:
        """The same source over a window starting ns earlier."""
        window = Window(self.window.start - ns, self.window.end)
        return QuerySource(self.rt, self.load, window, self.timezone, self.budget)

    def rows(self, metric: str, tags: Mapping[str, Any], group_by: tuple[str, ...], *,
             aggregation: str | None = None, interval_ns: int | None = None,
             descending: bool = False, limit: int | None = None) -> list[Row]:
        span = self.window.document()
        if span is None:
            return []
        doc: dict[str, Any] = {"metric": metric, **span}
        if tags:
            doc["tags"] = {k: list(v) for k, v in tags.items()}
        if group_by:
            doc["group_by"] = list(group_by)
        if self.timezone:
            doc["timezone"] = self.timezone
        if aggregation:
            doc["aggregation"] = aggregation
            if interval_ns:
                doc["interval"] = interval_text(interval_ns)
        else:
            if descending:
                doc["order"] = "desc"
            # One row past what the budget has left tells a read it would overspend.
            doc["limit"] = min(limit or self.max_raw_rows, self.max_raw_rows,
                               max(self.budget.left, 0) + 1)
        result = run_query(self.rt, self.load(doc), "json")
        values = orjson.loads(result.body)
        self.budget.spend(len(values))
        if result.headers.get("X-Tsapi-Truncated") and not limit:
            raise InfluxQLError(f"max-select-point limit exceeded: more than "
                                f"{self.max_raw_rows} points; narrow the time range, "
                                "aggregate, or add LIMIT")
        out = []
        for item in values:
            tags_of = item.get("tags") or {}
            key = tuple(tags_of.get(k) or "" for k in group_by)
            out.append(Row(key, to_ns(datetime.fromisoformat(item["time"])), item["value"]))
        return out


def series_filter(predicate, tag_sets: list[dict[str, str]]) -> dict[str, tuple] | None:
    """The /query `tags` filter selecting exactly the series that pass `predicate`.

    None: no series passes. InfluxQLError when the passing series are no set a `tags`
    filter (any of some values per key) can name, e.g. an OR across two tag keys that
    leaves some combinations out.
    """
    if predicate is None:
        return {}
    passing = [tags for tags in tag_sets if matches(predicate, tags)]
    if not passing:
        return None
    if len(passing) == len(tag_sets):
        return {}
    keys = sorted({k for tags in tag_sets for k in tags})
    wanted: dict[str, tuple] = {}
    for key in keys:
        values = {tags.get(key, "") for tags in passing}
        if "" in values:
            continue  # series without the key pass: no filter on it can keep them
        if values != {tags.get(key, "") for tags in tag_sets}:
            wanted[key] = tuple(sorted(values))
    def chosen(filters: dict[str, tuple]) -> int:
        return sum(all(tags.get(k, "") in vals for k, vals in filters.items())
                   for tags in tag_sets)

    for key in list(wanted):  # drop the keys that narrow nothing further
        fewer = {k: v for k, v in wanted.items() if k != key}
        if chosen(fewer) == len(passing):
            wanted = fewer
    if chosen(wanted) != len(passing) or any(len(v) > MAX_TAG_FILTER_VALUES
                                          for v in wanted.values()):
        raise InfluxQLError("unsupported condition: these tag conditions (an OR across tag "
                            "keys, or a test that keeps series lacking a tag) select series "
                            "tsapi cannot name in one query")
    return wanted


def interval_text(interval_ns: int) -> str:
    """The /query spelling: /query's own normalized one, in the largest unit that divides
    it ("15250 weeks" for InfluxDB's longest GROUP BY time(), not 10 digits of seconds)."""
    return str(BucketInterval(micros=interval_ns // 1000))


def check_interval(interval_ns: int, offset_ns: int = 0) -> None:
    """A GROUP BY time() width and offset /query can bucket by."""
    if interval_ns <= 0:
        raise InfluxQLError("time dimension must have a positive duration")
    if interval_ns % 1000 or (interval_ns % 1_000_000_000 and interval_ns >= 10**12):
        raise InfluxQLError("unsupported GROUP BY time(): use whole microseconds (whole "
                            "seconds above 1000 seconds)")
    if offset_ns % 1000:
        # Else the buckets /query is asked for shrink to nothing (points are microseconds).
        raise InfluxQLError("unsupported GROUP BY time() offset: use whole microseconds")


# tsapi aligns buckets to 2000-01-03 (as time_bucket does); InfluxDB to the epoch plus the
# GROUP BY offset.
TSAPI_ORIGIN = 946_857_600 * 1_000_000_000


def tsapi_sub_interval(interval_ns: int, offset_ns: int) -> int:
    """The widest bucket both alignments agree on: the interval itself when tsapi's buckets
    are InfluxDB's (intervals dividing a day, no offset), else a divisor of it (a day for
    InfluxDB's Thursday-aligned weeks) whose buckets add up to InfluxDB's."""
    return math.gcd(interval_ns, (TSAPI_ORIGIN - offset_ns) % interval_ns)
