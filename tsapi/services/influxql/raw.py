"""Raw SELECTs: points as /query returns them, one row per series and time, and
derivatives of raw points."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from tsapi.formats.influxql.predicates import (
    field_names,
    row_matches,
)
from tsapi.formats.influxql.tokens import InfluxQLError
from tsapi.services.influxql.catalog import MeasurementInfo
from tsapi.services.influxql.columns import MAX_GROUP_KEYS, Column
from tsapi.services.influxql.source import (
    QuerySource,
    series_filter,
)


def raw_series(stmt, info: MeasurementInfo, columns: list[Column], predicate, group_keys,
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
        if _one_stream(stmt, columns, fetched, group_keys, field_predicate):
            # One field, one output series, no tag shown: the newest (or oldest) rows of
            # all series together, ordered by time, and only as many as LIMIT asks for.
            rows = source.rows(metric, tags, (), descending=stmt.descending,
                               limit=stmt.limit + stmt.offset)
            for n, row in enumerate(rows):
                merged[((" row", n),)][row.time] = {field_key: row.value}
            continue
        if len(all_keys) > MAX_GROUP_KEYS:
            raise InfluxQLError(f"raw queries over series with more than {MAX_GROUP_KEYS} "
                                "tag keys are not supported")
        for row in source.rows(metric, tags, all_keys):
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


def _one_stream(stmt, columns: list[Column], fetched: set[str], group_keys,
                field_predicate) -> bool:
    return bool(stmt.limit) and not group_keys and len(fetched) == 1 \
        and field_predicate is None and not any(c.derivative or c.is_tag for c in columns)


def _raw_derivative(entries, columns: list[Column]) -> list[list]:
    if len(columns) != 1:
        raise InfluxQLError("derivative() cannot be combined with other fields")
    column = columns[0]
    points = [(t, v.get(column.field)) for t, _, _, v in entries
              if isinstance(v.get(column.field), int | float)]
    return [[t, value] for t, value in derive(points, column)]


def derive(points: list[tuple[int, Any]], column: Column,
           nulls: bool = False) -> list[tuple[int, float | None]]:
    """The derivative between each point and the one before it; with nulls, a point whose
    value is None gives None beside it (else every point must be a number)."""
    out = []
    for (t0, v0), (t1, v1) in zip(points, points[1:], strict=False):
        if t1 == t0:
            continue
        if nulls and (v0 is None or v1 is None):
            out.append((t1, None))
            continue
        value = (v1 - v0) / ((t1 - t0) / column.unit)
        if column.derivative == "non_negative_derivative" and value < 0:
            continue
        out.append((t1, value))
    return out
