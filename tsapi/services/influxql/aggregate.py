"""Aggregate SELECTs: one /query aggregation per column (or raw rows for the functions
/query has no name for), merged per group and bucket, then filled as InfluxDB fills."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from tsapi.formats.influxql import ast
from tsapi.formats.influxql.results import (
    bucket_grid,
    bucket_start,
    check_timezone,
    fill_column,
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
)


def aggregate_series(stmt, info: MeasurementInfo, columns: list[Column], predicate,
                      group_keys, source: QuerySource, start) -> dict[tuple, list[list]]:
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
                result = _column_rows(column, metric, tags, group_keys, source, interval,
                                      stmt, stamp, alone)
        if column.derivative:
            result = {k: derive([(t, v) for t, v in rows if v is not None], column)
                      for k, rows in result.items()}
        per_column.append(result)
    keys = sorted({k for result in per_column for k, rows in result.items() if rows})
    grid = None
    if interval is not None and stmt.fill.mode != "none":
        window = source.window
        zone = check_timezone(stmt.timezone) if stmt.timezone else None
        grid = bucket_grid(window.start, window.end, interval, stmt.group_offset, zone)
        if any(c.derivative for c in columns):
            grid = grid[1:]
    out: dict[tuple, list[list]] = {}
    for key in keys:
        if len(columns) == 1 and columns[0].function == "distinct":
            out[key] = [[t, v] for t, v in per_column[0].get(key, [])]
            continue
        by_time = [dict(result.get(key, [])) for result in per_column]
        times = grid if grid is not None else sorted({t for m in by_time for t in m})
        values = [[m.get(t) for t in times] for m in by_time]
        filled = [fill_column(times, col, _fill_for(c, stmt.fill))
                  for c, col in zip(columns, values, strict=True)]
        rows = [[t, *(col[i] for col in filled)] for i, t in enumerate(times)]
        if interval is not None and stmt.fill.mode == "none":
            rows = [r for r in rows if any(v is not None for v in r[1:])]
        out[key] = rows
    return out


def _fill_for(column: Column, fill: ast.Fill) -> ast.Fill:
    # InfluxDB counts an empty bucket as 0 rather than null.
    if fill.mode == "null" and column.function in ("count", "count_distinct") \
            and not column.derivative:
        return ast.Fill("value", 0)
    return fill


def _column_rows(column: Column, metric: str, tags, group_keys, source: QuerySource,
                 interval, stmt, stamp: int, alone: bool) -> dict[tuple, list[tuple[int, Any]]]:
    """One column's (time, value) rows per group."""
    function = column.function
    point_times = alone and interval is None and function in SELECTORS
    if function in FROM_RAW or point_times:
        rows = source.rows(metric, tags, group_keys)
        return _from_raw(column, rows, interval, stmt, stamp, keep_time=point_times)
    if function == "spread":
        highs = _grouped(source.rows(metric, tags, group_keys, aggregation="max",
                                     interval_ns=interval), interval, stamp)
        lows = _grouped(source.rows(metric, tags, group_keys, aggregation="min",
                                    interval_ns=interval), interval, stamp)
        return {k: [(t, None if v is None or dict(lows[k]).get(t) is None
                     else v - dict(lows[k])[t]) for t, v in rows]
                for k, rows in highs.items()}
    aggregation = "count_distinct" if function == "count_distinct" else AGGREGATIONS[function]
    rows = source.rows(metric, tags, group_keys, aggregation=aggregation,
                       interval_ns=interval)
    return _grouped(rows, interval, stamp)


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
    function = column.function
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
