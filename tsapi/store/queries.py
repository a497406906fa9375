"""Reading points back: which series, and raw ranges (aggregates are in store.buckets)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import (
    INTEGER,
    Connection,
    Numeric,
    Select,
    Text,
    case,
    cast,
    func,
    literal,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.sql import ColumnElement

from tsapi.store.catalog import Metric
from tsapi.store.schema import points, series


@dataclass(frozen=True)
class Selection:
    """Which series: one metric, optionally narrowed by tag equality or any-of lists."""

    metric: Metric
    tags: dict[str, str | tuple[str, ...]] = field(default_factory=dict)

    def series_ids(self):
        stmt = select(series.c.id).where(series.c.metric_id == self.metric.id)
        exact = {k: v for k, v in self.tags.items() if isinstance(v, str)}
        if exact:
            stmt = stmt.where(series.c.tags.contains(exact))  # jsonb @>, served by GIN
        for key, values in self.tags.items():
            if not isinstance(values, str):
                stmt = stmt.where(series.c.tags[key].astext.in_(values))
        return stmt.scalar_subquery()

    @property
    def value_column(self):
        return points.c.value_text if self.metric.value_type == "string" else points.c.value_num


@dataclass(frozen=True)
class RawQuery:
    selection: Selection
    start: datetime
    end: datetime
    descending: bool = False
    limit: int | None = None
    after: tuple[datetime, int] | None = None  # keyset cursor: (time, series id)
    group_by: tuple[str, ...] = ()


def use_timezone(conn: Connection, timezone: str | None) -> None:
    """Make this transaction render and step times in `timezone` (a validated IANA name)."""
    if timezone:
        conn.execute(select(func.set_config("TimeZone", timezone, True)))


def group_columns(group_by: tuple[str, ...]) -> list[ColumnElement]:
    return [series.c.tags[key].astext.label(f"g{i}") for i, key in enumerate(group_by)]


def points_in_range(selection: Selection, start: datetime, end: datetime,
                    columns: list[ColumnElement], groups: list[ColumnElement]) -> Select:
    """(*columns, *groups) of the selected series' points in [start, end), joined to their
    series when group columns need its tags."""
    stmt = select(*columns, *groups).where(
        points.c.series_id.in_(selection.series_ids()),
        points.c.time >= start,
        points.c.time < end,
    )
    if groups:
        stmt = stmt.join(series, series.c.id == points.c.series_id)
    return stmt


def latest_per_series(selection: Selection, *columns: ColumnElement,
                      before: datetime | None = None) -> Select:
    """(time, value, *columns) of the newest point of each selected series (before `before`,
    if given): a LATERAL subquery, one index probe per series."""
    newest = select(points.c.time, selection.value_column.label("value")).where(
        points.c.series_id == series.c.id)
    if before is not None:
        newest = newest.where(points.c.time < before)
    latest = newest.order_by(points.c.time.desc()).limit(1).lateral("latest")
    return (
        select(latest.c.time, latest.c.value, *columns)
        .select_from(series)
        .join(latest, literal(True))
        .where(series.c.id.in_(selection.series_ids()))
    )


def series_group_count(conn: Connection, selection: Selection,
                       group_by: tuple[str, ...]) -> int:
    """How many groups the `group_by` tag values form among the selected series (a missing
    tag is a group of its own, as in the answers); 0 when no series is selected.

    Read from the series catalog alone, never from points: the cost check runs it before a
    query's real work.
    """
    distinct_groups = (
        select(*group_columns(group_by))
        .where(series.c.id.in_(selection.series_ids()))
        .distinct()
        .subquery("groups")
    )
    return conn.execute(select(func.count()).select_from(distinct_groups)).scalar_one()


def raw_statement(q: RawQuery) -> Select:
    """Rows of (time, value, series id, *group values), in the order they are returned."""
    sel = q.selection
    groups = group_columns(q.group_by)
    stmt = points_in_range(sel, q.start, q.end,
                           [points.c.time, sel.value_column, points.c.series_id], groups)
    key = tuple_(points.c.time, points.c.series_id)
    if q.after is not None:
        stmt = stmt.where(key < tuple_(*q.after) if q.descending else key > tuple_(*q.after))
    order = [points.c.time.desc(), points.c.series_id.desc()] if q.descending else [
        points.c.time, points.c.series_id]
    stmt = stmt.order_by(*[g.asc().nulls_first() for g in groups], *order)
    if q.limit is not None:
        stmt = stmt.limit(q.limit)
    return stmt


def stream_raw(conn: Connection, q: RawQuery, batch: int = 10_000) -> Iterator:
    """Raw rows from a server-side cursor: memory stays flat whatever the result size."""
    result = conn.execution_options(stream_results=True, max_row_buffer=batch).execute(
        raw_statement(q)
    )
    yield from result


def json_time(time_col) -> ColumnElement:
    """A timestamptz as a JSON string in Python's isoformat: 6 fraction digits or none.

    to_json is fast but trims trailing zeros (".5"); to_char is exact but slow, so it is
    only used for the fractions to_json would shorten.
    """
    micros = cast(func.date_part("microseconds", time_col), INTEGER) % 1_000_000
    return case(
        ((micros != 0) & (micros % 10 == 0),
         literal('"') + func.to_char(time_col, 'YYYY-MM-DD"T"HH24:MI:SS.USTZH:TZM')
         + literal('"')),
        else_=cast(func.to_json(time_col), Text),
    )


def _json_value(selection: Selection) -> ColumnElement:
    """A value as JSON text, numbers spelled as Python spells floats (42.0, -0.0)."""
    if selection.metric.value_type == "string":
        return cast(func.to_json(points.c.value_text), Text)
    return json_float(points.c.value_num)


def json_float(v) -> ColumnElement:
    """A float8 as JSON text, spelled as the JSON encoder (orjson) spells it; NULL stays NULL.

    Both write the shortest digits that read back the same double, but PostgreSQL switches
    to an exponent outside 1e-4 <= |v| < 1e15, the encoder outside 1e-5 <= |v| < 1e16, and
    PostgreSQL pads exponents to two digits (1e-07, the encoder 1e-7). Numeric spells the
    shortest digits without an exponent where only the encoder does.
    """
    text = cast(v, Text)
    magnitude = func.abs(v)
    plain = cast(cast(text, Numeric), Text)
    return case(
        # Most values first: a fraction where both spell no exponent, as PostgreSQL does (the
        # else branch's replace would find nothing to change). Tested before the others, it
        # spares each such value four comparisons and the replace (a year of hourly rows:
        # ~0.4 ms of ~6).
        ((magnitude >= 1e-4) & (magnitude < 1e15) & (v != func.trunc(v)), text),
        ((v == func.trunc(v)) & (magnitude < 1e15), text + literal(".0")),
        ((magnitude >= 1e15) & (magnitude < 1e16),
         case((v == func.trunc(v), plain + literal(".0")), else_=plain)),
        ((magnitude >= 1e-5) & (magnitude < 1e-4), plain),
        else_=func.replace(text, "e-0", "e-"),
    )


def json_tags(pairs: list[tuple[str, ColumnElement]]) -> ColumnElement:
    """Tag values as a JSON object spelled as the JSON encoder spells it ({"k":"v"}, a
    missing tag null); json_build_object would add spaces around each colon."""
    text = literal("{")
    for n, (key, column) in enumerate(pairs):
        text = text + literal(("," if n else "") + json.dumps(key, ensure_ascii=False) + ":") \
            + func.coalesce(cast(func.to_json(column), Text), literal("null"))
    return text + literal("}")


def raw_json_statement(q: RawQuery, metric: str | None = None) -> Select:
    """(row count, the rows as JSON objects joined by commas), rendered by the database.

    Building the text in SQL lets 50,000 rows leave as one value: no per-row Python objects.
    The objects match what the JSON encoder writes for the same rows.
    """
    sel = q.selection
    text = literal('{"time":') + json_time(points.c.time) + literal(',"value":') \
        + _json_value(sel)
    if q.group_by:
        pairs = [(key, series.c.tags[key].astext) for key in q.group_by]
        text = text + literal(',"tags":') + json_tags(pairs)
    if metric is not None:
        text = text + literal(',"metric":') + cast(func.to_json(cast(literal(metric), Text)),
                                                   Text)
    page = raw_statement(q).add_columns((text + literal("}")).label("j")).subquery("page")
    groups = [page.c[f"g{i}"] for i in range(len(q.group_by))]
    order = [page.c.time.desc(), page.c.series_id.desc()] if q.descending else [
        page.c.time, page.c.series_id]
    return select(
        func.count(),
        func.string_agg(page.c.j, aggregate_order_by(literal(","), *groups, *order)),
    )


def raw_json(conn: Connection, q: RawQuery, metric: str | None = None) -> tuple[str, int]:
    count, body = conn.execute(raw_json_statement(q, metric)).one()
    return body or "", count


def raw_key_at(conn: Connection, q: RawQuery, offset: int) -> tuple[datetime, int]:
    """(time, series id) of the row at `offset` in the raw order: where the next page starts."""
    row = conn.execute(
        raw_statement(q).limit(None).offset(offset).limit(1)).one()
    return row[0], row[2]


