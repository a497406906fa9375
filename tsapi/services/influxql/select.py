"""SELECT: InfluxQL fields become /query requests (one per field and function), and their
rows become InfluxDB series. Functions /query has no name for are computed from the rows it
returned (spread from max and min; percentile, distinct and the selectors' point times from
raw rows; derivatives from consecutive rows)."""

from __future__ import annotations

from typing import Any

from tsapi.formats.influxql import ast
from tsapi.formats.influxql.predicates import (
    predicate_keys,
    split_fields,
)
from tsapi.formats.influxql.results import (
    check_timezone,
    render_time,
)
from tsapi.formats.influxql.timerange import MAX_TIME, MIN_TIME, split_condition
from tsapi.formats.influxql.tokens import InfluxQLError
from tsapi.services.influxql.aggregate import aggregate_series
from tsapi.services.influxql.catalog import Catalog, MeasurementInfo
from tsapi.services.influxql.columns import MAX_GROUP_KEYS, Column, plan_columns
from tsapi.services.influxql.raw import raw_series
from tsapi.services.influxql.source import (
    QuerySource,
    Window,
    check_interval,
)


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
    columns = plan_columns(stmt, info)

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
        check_interval(stmt.group_interval, stmt.group_offset)
    raw = all(c.function in (None, "raw") for c in columns)
    window = _window(stmt, info, columns, now_ns, time_range.start, time_range.end)
    if window is None:
        return []
    source: QuerySource = source_for(window, stmt.timezone)
    if raw:
        series = raw_series(stmt, info, columns, predicate, group_keys, source,
                             field_predicate)
    elif field_predicate is not None:
        raise InfluxQLError("unsupported condition: conditions on field values are only "
                            "supported in raw queries (no functions)")
    else:
        series = aggregate_series(stmt, info, columns, predicate, group_keys, source,
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
