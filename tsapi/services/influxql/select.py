"""SELECT: InfluxQL fields become /query requests (one per field and function), and their
rows become InfluxDB series. Functions /query has no name for are computed here from the
rows it returned (spread from max and min; percentile, distinct and the selectors' point
times from raw rows; derivatives from consecutive rows)."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from tsapi.formats.influxql import ast
from tsapi.formats.influxql.conditions import (
    MAX_TIME,
    MIN_TIME,
    field_names,
    predicate_keys,
    row_matches,
    split_condition,
    split_fields,
)
from tsapi.formats.influxql.results import (
    bucket_grid,
    bucket_start,
    check_timezone,
    column_names,
    fill_column,
    render_time,
)
from tsapi.formats.influxql.tokens import InfluxQLError
from tsapi.services.influxql.catalog import Catalog, MeasurementInfo
from tsapi.services.influxql.source import (
    QuerySource,
    Row,
    Window,
    interval_supported,
    series_filter,
)

# InfluxQL function -> /query aggregation.
AGGREGATIONS = {"mean": "avg", "median": "median", "count": "count", "sum": "sum",
                "min": "min", "max": "max", "first": "first", "last": "last",
                "stddev": "stddev"}
SELECTORS = frozenset({"first", "last", "min", "max", "percentile"})
FROM_RAW = frozenset({"percentile", "distinct"})
DERIVATIVES = frozenset({"derivative", "non_negative_derivative"})
NUMERIC = frozenset({"mean", "median", "sum", "min", "max", "stddev", "spread",
                     "percentile"})
SECOND = 1_000_000_000
MAX_GROUP_KEYS = 8


@dataclass(frozen=True)
class Column:
    name: str
    function: str | None  # None: a raw field or tag
    field: str
    percentile: float | None = None
    derivative: str | None = None  # derivative | non_negative_derivative
    unit: int = SECOND
    is_tag: bool = False


def run_select(stmt: ast.SelectStatement, catalog: Catalog, source_for, now_ns: int,
               epoch: str | None) -> list[dict[str, Any]]:
    """The series of a SELECT, sorted by measurement then tags."""
    zone = check_timezone(stmt.timezone) if stmt.timezone else None
    names: list[str] = []
    for source in stmt.sources:
        if source.regex is not None:
            names.extend(catalog.matching(source.regex))
        else:
            names.append(source.name)
    out = []
    for name in sorted(set(names)):
        info = catalog.measurement(name)
        if info is None:
            continue
        out.extend(_select_measurement(stmt, info, source_for, now_ns, epoch, zone))
    return out


def _columns(stmt: ast.SelectStatement, info: MeasurementInfo) -> list[Column]:
    columns: list[Column] = []
    tag_keys = set(info.tag_keys)
    for item in stmt.fields:
        expr = item.expr
        if isinstance(expr, ast.Wildcard):
            if stmt.group_interval is not None:
                raise InfluxQLError("GROUP BY time() needs an aggregate function")
            hidden = set(stmt.group_tags) | (tag_keys if stmt.group_all_tags else set())
            names = sorted(set(info.fields) | (tag_keys - hidden))
            columns.extend(Column(n, None, n, is_tag=n not in info.fields) for n in names)
        elif isinstance(expr, ast.VarRef):
            if expr.name.lower() == "time":
                continue
            is_tag = expr.kind == "tag" or (expr.name not in info.fields
                                            and expr.name in tag_keys)
            columns.append(Column(item.alias or expr.name, None, expr.name, is_tag=is_tag))
        elif isinstance(expr, ast.Call):
            columns.append(_call_column(expr, item.alias))
        else:
            raise InfluxQLError("unsupported expression in SELECT: only fields, tags, * and "
                                "functions of one field (no arithmetic, no literals)")
    if not columns:
        raise InfluxQLError("at least 1 non-time field must be queried")
    raw = [c for c in columns if c.function is None]
    if raw and len(raw) != len(columns):
        raise InfluxQLError("mixing aggregate and non-aggregate queries is not supported")
    if not raw and stmt.group_interval is None and any(
            c.derivative and c.function not in (None, "raw") for c in columns):
        raise InfluxQLError("aggregate function required inside the call to derivative")
    if any(c.function == "distinct" for c in columns) and len(columns) > 1:
        raise InfluxQLError("aggregate function distinct() cannot be combined with other "
                            "functions or fields")
    if raw and stmt.group_interval is not None:
        raise InfluxQLError("GROUP BY requires at least one aggregate function")
    names = column_names(stmt.fields, [c.name for c in columns])
    return [Column(n, c.function, c.field, c.percentile, c.derivative, c.unit, c.is_tag)
            for n, c in zip(names, columns, strict=True)]


def _call_column(expr: ast.Call, alias: str | None) -> Column:
    name = expr.name
    if name in DERIVATIVES:
        if not 1 <= len(expr.args) <= 2:
            raise InfluxQLError(f"invalid number of arguments for {name}, expected at least "
                                "1 but no more than 2")
        unit = SECOND
        if len(expr.args) == 2:
            if not isinstance(expr.args[1], ast.DurationLiteral) or expr.args[1].nanoseconds \
                    <= 0:
                raise InfluxQLError(f"second argument to {name} must be a duration, got "
                                    "something else")
            unit = expr.args[1].nanoseconds
        inner = expr.args[0]
        if isinstance(inner, ast.VarRef):
            # derivative(field): over raw points, so its column is raw but transformed.
            return Column(alias or name, "raw", inner.name, derivative=name, unit=unit)
        if isinstance(inner, ast.Call):
            base = _call_column(inner, None)
            if base.derivative or base.function == "distinct":
                raise InfluxQLError(f"unsupported call inside {name}")
            return Column(alias or name, base.function, base.field, base.percentile, name,
                          unit)
        raise InfluxQLError(f"expected field argument in {name}()")
    if name == "count" and len(expr.args) == 1 and isinstance(expr.args[0], ast.Call) \
            and expr.args[0].name == "distinct":
        inner = expr.args[0]
        if len(inner.args) != 1 or not isinstance(inner.args[0], ast.VarRef):
            raise InfluxQLError("distinct function requires at least one argument")
        return Column(alias or "count", "count_distinct", inner.args[0].name)
    if name == "percentile":
        if len(expr.args) != 2 or not isinstance(expr.args[0], ast.VarRef) \
                or not isinstance(expr.args[1], ast.NumberLiteral):
            raise InfluxQLError("invalid number of arguments for percentile, expected 2")
        return Column(alias or name, name, expr.args[0].name, float(expr.args[1].value))
    if name in AGGREGATIONS or name in ("spread", "distinct"):
        if len(expr.args) != 1:
            raise InfluxQLError(f"invalid number of arguments for {name}, expected 1, got "
                                f"{len(expr.args)}")
        arg = expr.args[0]
        if isinstance(arg, ast.Wildcard):
            raise InfluxQLError(f"unsupported call: {name}(*) (name the field)")
        if not isinstance(arg, ast.VarRef):
            raise InfluxQLError(f"expected field argument in {name}()")
        return Column(alias or name, name, arg.name)
    raise InfluxQLError(f"unsupported call: {name}")


def _window(stmt: ast.SelectStatement, info: MeasurementInfo, columns: list[Column],
            now_ns: int, start, end) -> Window | None:
    """The statement's range; None when it can hold no point."""
    if stmt.group_interval is not None and start is None:
        # As InfluxDB: buckets start from the earliest point of the fields asked for.
        seen = [info.first_seen[c.field] for c in columns if c.field in info.first_seen]
        if not seen:
            return None
        start = min(seen)
    if end is None:
        end = now_ns if stmt.group_interval is not None else MAX_TIME
    return Window(MIN_TIME if start is None else start, end)


def _select_measurement(stmt, info: MeasurementInfo, source_for, now_ns, epoch,
                        zone) -> list[dict[str, Any]]:
    time_range, predicate = split_condition(stmt.condition, now_ns)
    columns = _columns(stmt, info)

    def is_field(name: str) -> bool:
        return name in info.fields

    predicate, field_predicate = split_fields(predicate, is_field)
    if predicate is not None:
        predicate_keys(predicate)  # refuses anything but tag tests before any query runs
    group_keys = tuple(sorted(set(info.tag_keys) if stmt.group_all_tags else
                              set(stmt.group_tags)))
    if len(group_keys) > MAX_GROUP_KEYS:
        raise InfluxQLError(f"GROUP BY more than {MAX_GROUP_KEYS} tag keys is not supported")
    if stmt.group_interval is not None:
        interval_supported(stmt.group_interval, stmt.group_offset)
    raw = all(c.function in (None, "raw") for c in columns)
    window = _window(stmt, info, columns, now_ns, time_range.start, time_range.end)
    if window is None:
        return []
    source: QuerySource = source_for(window, stmt.timezone)
    if raw:
        series = _raw_series(stmt, info, columns, predicate, group_keys, source,
                             field_predicate)
    elif field_predicate is not None:
        raise InfluxQLError("unsupported condition: conditions on field values are only "
                            "supported in raw queries (no functions)")
    else:
        series = _aggregate_series(stmt, info, columns, predicate, group_keys, source,
                                   time_range.start)
    keys = sorted(series)
    if stmt.soffset:
        keys = keys[stmt.soffset:]
    if stmt.slimit:
        keys = keys[:stmt.slimit]
    out = []
    for key in keys:
        rows = series[key]
        if stmt.descending:
            rows = rows[::-1]
        if stmt.offset:
            rows = rows[stmt.offset:]
        if stmt.limit:
            rows = rows[:stmt.limit]
        if not rows:
            continue
        item: dict[str, Any] = {"name": info.name}
        if group_keys:
            item["tags"] = dict(zip(group_keys, key, strict=True))
        item["columns"] = ["time"] + [c.name for c in columns]
        item["values"] = [[render_time(r[0], epoch, zone), *r[1:]] for r in rows]
        out.append(item)
    return out


# -- raw ----------------------------------------------------------------------------------------
def _raw_series(stmt, info: MeasurementInfo, columns: list[Column], predicate, group_keys,
                source: QuerySource, field_predicate=None) -> dict[tuple, list[list]]:
    """Raw points, one row per series and time; fields of one series at one time share it.

    Conditions on field values are tested on these rows (so LIMIT applies after them)."""
    merged: dict[tuple, dict[int, dict[str, Any]]] = defaultdict(dict)
    fetched = {c.field for c in columns if not c.is_tag and c.field in info.fields}
    fetched |= field_names(field_predicate, lambda n: n in info.fields)
    for field_key in sorted(fetched):
        metric = info.fields[field_key]
        tag_sets = info.series.get(metric, [])
        tags = series_filter(predicate, tag_sets)
        if tags is None:
            continue
        all_keys = tuple(sorted({k for t in tag_sets for k in t}))
        if len(all_keys) > MAX_GROUP_KEYS:
            raise InfluxQLError(f"raw queries over series with more than {MAX_GROUP_KEYS} "
                                "tag keys are not supported")
        limit = None
        if stmt.limit and not all_keys and len(fetched) == 1 and field_predicate is None \
                and not any(c.derivative for c in columns):
            limit = stmt.limit + stmt.offset
        for row in source.rows(metric, tags, all_keys, descending=stmt.descending,
                               limit=limit):
            series_tags = {k: v for k, v in zip(all_keys, row.key, strict=True) if v}
            merged[tuple(sorted(series_tags.items()))].setdefault(row.time, {})[
                field_key] = row.value
    grouped: dict[tuple, list[tuple]] = defaultdict(list)
    for series_key, by_time in merged.items():
        tags = dict(series_key)
        group = tuple(tags.get(k, "") for k in group_keys)
        for t, values in by_time.items():
            if field_predicate is None or row_matches(field_predicate, tags, values,
                                                      lambda n: n in info.fields):
                grouped[group].append((t, series_key, tags, values))
    out: dict[tuple, list[list]] = {}
    for group, entries in grouped.items():
        entries.sort(key=lambda e: (e[0], e[1]))
        if any(c.derivative for c in columns):
            out[group] = _raw_derivative(entries, columns)
            continue
        rows = []
        for t, _, tags, values in entries:
            row = [t]
            for c in columns:
                row.append(tags.get(c.field) if c.is_tag else values.get(c.field))
            if any(values.get(c.field) is not None for c in columns if not c.is_tag):
                rows.append(row)
        if rows:
            out[group] = rows
    return out


def _raw_derivative(entries, columns: list[Column]) -> list[list]:
    if len(columns) != 1:
        raise InfluxQLError("derivative() cannot be combined with other fields")
    column = columns[0]
    points = [(t, v.get(column.field)) for t, _, _, v in entries
              if isinstance(v.get(column.field), int | float)]
    return [[t, value] for t, value in _derive(points, column)]


def _derive(points: list[tuple[int, float]], column: Column) -> list[tuple[int, float]]:
    out = []
    for (t0, v0), (t1, v1) in zip(points, points[1:], strict=False):
        if t1 == t0:
            continue
        value = (v1 - v0) / ((t1 - t0) / column.unit)
        if column.derivative == "non_negative_derivative" and value < 0:
            continue
        out.append((t1, value))
    return out


# -- aggregates ---------------------------------------------------------------------------------
def _aggregate_series(stmt, info: MeasurementInfo, columns: list[Column], predicate,
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
            result = {k: _derive([(t, v) for t, v in rows if v is not None], column)
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
