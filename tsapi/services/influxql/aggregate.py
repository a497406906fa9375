"""Aggregate SELECTs: one /query aggregation per column (or raw rows for the functions
/query has no name for), merged per group and bucket, then filled as InfluxDB fills."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from contextlib import suppress
from dataclasses import replace
from typing import Any

from tsapi.formats.influxql import ast
from tsapi.formats.influxql.results import (
    EMPTY,
    bucket_grid,
    bucket_start,
    check_timezone,
    fill_column,
    from_ns,
)
from tsapi.formats.influxql.tokens import InfluxQLError
from tsapi.services.influxql.catalog import MeasurementInfo
from tsapi.services.influxql.columns import (
    AGGREGATIONS,
    FROM_RAW,
    NUMERIC,
    SELECTORS,
    Column,
)
from tsapi.services.influxql.raw import derive
from tsapi.services.influxql.source import (
    QuerySource,
    Row,
    series_filter,
    tsapi_sub_interval,
)


def aggregate_series(stmt, info: MeasurementInfo, columns: list[Column], predicate,
                      group_keys, source: QuerySource, start) -> dict[tuple, list[list]]:
    """Rows [time, value per column] per group: per bucket with GROUP BY time() (every
    bucket of the range unless fill(none)), else one row stamped with the range's start."""
    interval = stmt.group_interval
    stamp = start if start is not None else 0
    per_column: list[dict[tuple, list[tuple[int, Any]]]] = []
    alone = len(columns) == 1
    for column in columns:
        metric = info.fields.get(column.field)
        result: dict[tuple, list[tuple[int, Any]]] = {}
        if metric is not None:
            tags = series_filter(predicate, info.series.get(metric, []))
            if tags is not None:
                if column.function in NUMERIC and info.types[column.field] != "number":
                    raise InfluxQLError(f"unsupported {column.function} iterator type: string")
                groups = _groups(info.series.get(metric, []), tags, group_keys)
                derived = column.derivative and interval is not None
                result = _column_rows(column, metric, tags, group_keys,
                                      _reaching_back(source, interval) if derived else source,
                                      interval, stmt, stamp, alone, groups)
        if column.derivative and interval is not None:
            result = _derived(column, result, stmt, interval, source.window)
        elif column.derivative:
            result = {k: derive([(t, v) for t, v in rows if v is not None], column)
                      for k, rows in result.items()}
        per_column.append(result)
    keys = sorted({k for result in per_column for k, rows in result.items() if rows})
    grid = None
    # A derivative's rows are those it computed from its filled aggregate (_derived): no
    # grid of its own, but beside other columns it is null where it has no row.
    if keys and interval is not None and stmt.fill.mode != "none" and \
            not all(c.derivative for c in columns):
        window = source.window
        if (window.end - window.start) // interval > source.max_buckets:
            raise InfluxQLError(f"max-select-buckets limit exceeded: more than "
                                f"{source.max_buckets} buckets of GROUP BY time()")
        zone = check_timezone(stmt.timezone) if stmt.timezone else None
        grid = bucket_grid(window.start, window.end, interval, stmt.group_offset, zone)
    out: dict[tuple, list[list]] = {}
    for key in keys:
        if len(columns) == 1 and columns[0].function == "distinct":
            out[key] = [[t, v] for t, v in per_column[0].get(key, [])]
            continue
        by_time = [dict(result.get(key, [])) for result in per_column]
        times = grid if grid is not None else sorted({t for m in by_time for t in m})
        # fill(none) has no grid: every bucket listed has a point in some column, kept even
        # when its aggregate is null (the stddev of a lone point), as InfluxDB lists it.
        values = [[m.get(t, EMPTY) for t in times] for m in by_time]
        filled = [fill_column(times, col, _NO_FILL if c.derivative and interval is not None
                              else _fill_for(c, stmt.fill))
                  for c, col in zip(columns, values, strict=True)]
        out[key] = [[t, *(col[i] for col in filled)] for i, t in enumerate(times)]
    return out


def _reaching_back(source: QuerySource, interval: int) -> QuerySource:
    """The source a GROUP BY time() derivative reads: InfluxDB starts its aggregate one
    interval before the range, so the range's first bucket has one before it (unless that
    lies before year 1, where nothing is stored)."""
    try:
        from_ns(source.window.start - interval)
    except OverflowError:
        return source
    return source.reaching_back(interval)


def _derived(column: Column, result: dict[tuple, list[tuple[int, Any]]], stmt, interval: int,
             window) -> dict[tuple, list[tuple[int, Any]]]:
    """derivative(aggregate) per group as InfluxDB computes it: the aggregate, read from one
    interval before the range, filled by the statement's fill(), then derived between its
    buckets that have a value; only the derivatives are rows (no fill of its own), and the
    unit is the interval unless one is given."""
    unit_column = replace(column, unit=column.unit or interval)
    fill = _fill_for(replace(column, derivative=None), stmt.fill)  # counts fill 0
    zone = check_timezone(stmt.timezone) if stmt.timezone else None
    first = bucket_start(window.start, interval, stmt.group_offset, zone)
    grid = None
    if fill.mode not in ("none", "null"):
        start = window.start
        with suppress(OverflowError):
            from_ns(start - interval)
            start -= interval
        grid = bucket_grid(start, window.end, interval, stmt.group_offset, zone)
    out = {}
    for key, rows in result.items():
        if grid is not None:
            known = dict(rows)
            column_values = [known.get(t, EMPTY) for t in grid]
            filled = fill_column(grid, column_values, fill)
            rows = _filled_points(grid, filled, column_values, fill.mode)
        # A null aggregate (the stddev of a lone point) is a point: derivatives beside it
        # are null, as InfluxDB gives them.
        out[key] = [(t, v) for t, v in derive(rows, unit_column, nulls=True) if t >= first]
    return out


def _filled_points(grid: list[int], filled: list, values: list,
                   mode: str) -> list[tuple[int, Any]]:
    """The points a derivative reads from a filled aggregate, as InfluxDB reads them (checked
    against influxd): every bucket, a null one too (a null fill(previous) carries on, one
    fill(linear) puts between a null and a number), but none the fill left null before the
    first bucket with a point, nor for fill(linear) after the last."""
    present = [i for i, v in enumerate(values) if v is not EMPTY]
    if not present:
        return []
    first = present[0]
    last = present[-1] if mode == "linear" else len(values)
    return [(t, v) for i, (t, v) in enumerate(zip(grid, filled, strict=True))
            if first <= i <= last or v is not None]


_NO_FILL = ast.Fill("null")


def _fill_for(column: Column, fill: ast.Fill) -> ast.Fill:
    # InfluxDB counts an empty bucket as 0 rather than null.
    if fill.mode == "null" and column.function in ("count", "count_distinct") \
            and not column.derivative:
        return ast.Fill("value", 0)
    return fill


MAX_GROUP_PROBES = 200


def _groups(tag_sets, tags, group_keys) -> list[tuple[str, ...]] | None:
    """The group values of the series a filter keeps; None when some group cannot be named
    by a `tags` filter (a series lacks a grouped key) or there are too many to probe."""
    groups = set()
    for series_tags in tag_sets:
        if all(series_tags.get(k, "") in v for k, v in tags.items()):
            group = tuple(series_tags.get(k, "") for k in group_keys)
            if "" in group:
                return None
            groups.add(group)
    return sorted(groups) if len(groups) <= MAX_GROUP_PROBES else None


def _first_or_last(column: Column, metric: str, tags, group_keys, source: QuerySource,
                   groups: list[tuple[str, ...]]) -> dict[tuple, list[tuple[int, Any]]]:
    """first()/last() with the point's time: one raw row per group, newest or oldest first,
    so a table of each host's last value reads one row per host, not the whole range."""
    out = {}
    for group in groups:
        narrowed = {**tags, **{k: (v,) for k, v in zip(group_keys, group, strict=True)}}
        rows = source.rows(metric, narrowed, (), descending=column.function == "last",
                           limit=1)
        if rows:
            out[group] = [(rows[0].time, rows[0].value)]
    return out


def _column_rows(column: Column, metric: str, tags, group_keys, source: QuerySource,
                 interval, stmt, stamp: int, alone: bool,
                 groups) -> dict[tuple, list[tuple[int, Any]]]:
    """One column's (time, value) rows per group."""
    function = column.function
    point_times = alone and interval is None and function in SELECTORS
    if point_times and function in ("first", "last") and groups is not None:
        return _first_or_last(column, metric, tags, group_keys, source, groups)
    if function in FROM_RAW or point_times:
        rows = source.rows(metric, tags, group_keys)
        return _from_raw(column, rows, interval, stmt, stamp, keep_time=point_times)
    if function == "spread":
        highs = _bucketed(source, metric, tags, group_keys, "max", interval, stmt, stamp)
        lows = _bucketed(source, metric, tags, group_keys, "min", interval, stmt, stamp)
        out = {}
        for key, rows in highs.items():
            low = dict(lows.get(key, []))
            out[key] = [(t, None if v is None or low.get(t) is None else v - low[t])
                        for t, v in rows]
        return out
    return _bucketed(source, metric, tags, group_keys, function, interval, stmt, stamp)


# How sub-buckets add up to a bucket, for the functions where they do.
_COMBINE = {"count": sum, "sum": sum, "min": min, "max": max}
DECOMPOSABLE = frozenset({"count", "sum", "min", "max", "mean", "first", "last"})


def _bucketed(source: QuerySource, metric: str, tags, group_keys, function: str, interval,
              stmt, stamp: int) -> dict[tuple, list[tuple[int, Any]]]:
    """(bucket, value) per group of one /query aggregation. Where tsapi's bucket alignment
    differs from InfluxDB's (weeks, offsets, 30d...), narrower buckets both agree on are
    asked for and added up here."""
    sub = tsapi_sub_interval(interval, stmt.group_offset) if interval is not None else None
    if sub is None or sub == interval:
        rows = source.rows(metric, tags, group_keys, aggregation=_aggregation(function),
                           interval_ns=interval)
        return _grouped(rows, interval, stamp)
    if function not in DECOMPOSABLE:
        # median, stddev, count(distinct()): no sum of parts gives them; bucket raw points.
        rows = source.rows(metric, tags, group_keys)
        return _from_raw(Column(function, function, ""), rows, interval, stmt, stamp,
                         keep_time=False)
    zone = check_timezone(stmt.timezone) if stmt.timezone else None
    parts = ("sum", "count") if function == "mean" else (function,)
    merged: dict[tuple, dict[int, dict[str, list]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list)))
    for part in parts:
        for row in source.rows(metric, tags, group_keys, aggregation=_aggregation(part),
                               interval_ns=sub):
            bucket = bucket_start(row.time, interval, stmt.group_offset, zone)
            merged[row.key][bucket][part].append((row.time, row.value))
    out: dict[tuple, list[tuple[int, Any]]] = {}
    for key, buckets in merged.items():
        rows = []
        for bucket in sorted(buckets):
            got = buckets[bucket]
            if function == "mean":
                count = sum(v for _, v in got["count"])
                value = sum(v for _, v in got["sum"]) / count if count else None
            elif function in ("first", "last"):
                points = sorted(got[function], key=lambda p: p[0])
                value = points[0][1] if function == "first" else points[-1][1]
            else:
                value = _COMBINE[function](v for _, v in got[function])
            rows.append((bucket, value))
        out[key] = rows
    return out


def _aggregation(function: str) -> str:
    return "count_distinct" if function == "count_distinct" else AGGREGATIONS[function]


def _grouped(rows: list[Row], interval, stamp: int) -> dict[tuple, list[tuple[int, Any]]]:
    out: dict[tuple, list[tuple[int, Any]]] = defaultdict(list)
    for row in rows:
        out[row.key].append((row.time if interval is not None else stamp, row.value))
    return out


def _from_raw(column: Column, rows: list[Row], interval, stmt, stamp: int,
              keep_time: bool) -> dict[tuple, list[tuple[int, Any]]]:
    zone = check_timezone(stmt.timezone) if stmt.timezone else None
    buckets: dict[tuple, dict[int, list[tuple[int, Any]]]] = defaultdict(
        lambda: defaultdict(list))
    for row in rows:
        bucket = bucket_start(row.time, interval, stmt.group_offset, zone) \
            if interval is not None else stamp
        buckets[row.key][bucket].append((row.time, row.value))
    out: dict[tuple, list[tuple[int, Any]]] = {}
    for key, by_bucket in buckets.items():
        result = []
        for bucket in sorted(by_bucket):
            points = sorted(by_bucket[bucket], key=lambda p: p[0])
            for t, value in _select(column, points):
                result.append((t if keep_time else bucket, value))
        out[key] = result
    return out


def _select(column: Column, points: list[tuple[int, Any]]) -> list[tuple[int, Any]]:
    """The value(s) a function picks or computes from one bucket's points, with times."""
    function = column.function
    if function == "median":
        return [(points[0][0], statistics.median(v for _, v in points))]
    if function == "stddev":
        values = [v for _, v in points]
        return [(points[0][0], statistics.stdev(values) if len(values) > 1 else None)]
    if function == "count_distinct":
        return [(points[0][0], len({v for _, v in points}))]
    if function == "distinct":
        seen = []
        for _, value in points:
            if value not in seen:
                seen.append(value)
        return [(points[0][0], v) for v in seen]
    if function == "first":
        return [points[0]]
    if function == "last":
        return [max(points, key=lambda p: p[0])]
    if function == "min":
        return [min(points, key=lambda p: (p[1], p[0]))]
    if function == "max":
        return [max(points, key=lambda p: (p[1], -p[0]))]
    if function == "percentile":
        ordered = sorted(points, key=lambda p: p[1])
        index = int(math.floor(len(ordered) * column.percentile / 100 + 0.5)) - 1
        if index < 0 or index >= len(ordered):
            return []
        return [ordered[index]]
    raise InfluxQLError(f"unsupported call: {function}")
