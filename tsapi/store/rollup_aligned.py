"""A rollup answer in one round trip, from a statement built once per shape.

The usual rollup answer reads coverage first (watermark, series, invalidations: one
statement), then the rows (another, built for what coverage found). Here both go in one
statement: the rows as if every selected series were materialized and valid over the whole
level buckets in range (the edges before the first and after the last read from raw points),
beside a flag that says whether they are — the conditions rollup_coverage.coverage checks, read
in the same snapshot. A false flag means the guess was wrong and the caller takes the usual
path: nothing read here is used.

The statement's structure depends only on the request's shape (level, aggregation, interval
kind, zone or not, group_by keys, tags or not, metric label or not, edges or not, the
backend); every value (metric, tags, range, interval width, zone, label) is a named
parameter. It is built once per shape and kept, so a small request pays no statement
building. It is also prepared on the server once per session (store.prepared): planning it
cost the database several times what running it over a day costs, and TimescaleDB excludes
the rollup table's chunks outside the range as the plan starts. The edges' points are read
through a function (rollup_reads.points_between) whose own query is planned with each
call's values: a kept plan reading points directly would hold all their chunks (one a day;
~150 ms to plan a year's), and planning the whole statement with its values on every
request took the database ~1.3 ms of its ~2 ms for a day 30 s off the hour.

A long range of one series' level buckets (a year of hours: 8,760 rows) is read by a third
statement, the listed one: only the values, their times being known from the range
(formats.regular_rows spells them); spelling 8,760 times with to_json and sorting the
spelled rows again took most of the statement's time.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import (
    BigInteger,
    Connection,
    Select,
    Text,
    and_,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB

from tsapi.config import RollupLevel
from tsapi.formats.regular_rows import fits_grid, regular_rows
from tsapi.store.buckets import TS, BucketQuery
from tsapi.store.engine import StorageInfo
from tsapi.store.prepared import PreparedStatement
from tsapi.store.queries import group_columns
from tsapi.store.rollup_combine import single_value
from tsapi.store.rollup_coverage import Coverage
from tsapi.store.rollup_reads import (
    json_select,
    json_value,
    level_wide,
    rollup_statement,
)
from tsapi.store.rollup_windows import ceil_to, floor_to
from tsapi.store.schema import (
    UNMATERIALIZED,
    rollup_invalidations,
    rollup_tables,
    rollup_watermarks,
    series,
)

GUESS_WRONG = object()  # the range is not wholly materialized and valid: read coverage
SHAPES = 256  # statements kept (per process); a shape is a handful of request options
PREPARED_BUCKETS = 1000  # level buckets a range may span to run the prepared statement


def aligned(q: BucketQuery, level: RollupLevel) -> bool:
    """Whether aligned_json can answer: interval buckets, at least one whole level bucket in
    range, tags matched by equality only (lists of values would make the shape vary)."""
    return (q.interval is not None and ceil_to(q.start, level) < floor_to(q.end, level)
            and all(isinstance(v, str) for v in q.selection.tags.values()))


def aligned_json(conn: Connection, storage: StorageInfo, q: BucketQuery, level: RollupLevel,
                 metric: str | None):
    """rollup_reads.rollup_json's answer (rows as JSON joined by commas, or None: read raw)
    when the guess holds; GUESS_WRONG when it does not."""
    a, b = ceil_to(q.start, level), floor_to(q.end, level)
    edged = (a, b) != (q.start, q.end)
    # Whole buckets of the level's own width are answered from single rollup rows: that
    # needs exactly one series per answer group (one series, without group_by), guessed and
    # checked in the statement (a wrong guess costs the usual path's two statements).
    single_rows = level_wide(q, level) and not edged
    shape = (storage.timescaledb, level, q.aggregation, q.interval.is_monthly,
             q.timezone is not None, q.group_by, bool(q.selection.tags), metric is not None,
             single_rows, edged)
    kept = _STATEMENTS.get(shape)
    if kept is None:
        if len(_STATEMENTS) >= SHAPES:
            _STATEMENTS.clear()
        stmt = _statement(storage, q, level, metric is not None, single_rows, edged)
        # Long ranges of single rows: prepared for every range, its plan reading the primary
        # key in order whatever the range (no sort to skip by scanning instead).
        listed = (PreparedStatement(_listed_statement(q, level), conn)
                  if single_rows and listable(q, level) and metric is None else None)
        kept = _STATEMENTS[shape] = (stmt, PreparedStatement(stmt, conn), listed)
    params = {"al_metric": q.selection.metric.id, "al_tags": dict(q.selection.tags),
              "al_lo": q.start, "al_a": a, "al_b": b, "al_hi": q.end,
              "bucket_width": str(q.interval), "al_label": metric}
    if q.timezone is not None:
        params["bucket_tz"] = q.timezone
    if q.interval.is_monthly:
        params["bucket_months"] = q.interval.months
    stmt, prepared, listed = kept
    width = timedelta(seconds=level.seconds)
    # A long range is planned with its own values: planning is a small part of its time,
    # and a plan kept from short ranges reads the rollup table through its index where a
    # scan is cheaper (a year of hours: ~1 ms more). So the kept plan sees short ranges only;
    # a long range of single rows goes to the listed statement, which spells no time.
    if (b - a) <= PREPARED_BUCKETS * width:
        run = prepared.execute(conn, params)
    elif listed is not None:
        return _listed_json(listed.execute(conn, {**params, "al_n": (b - a) // width}).one(),
                            a, level.seconds)
    else:
        run = conn.execute(stmt, params)
    body, small, covered = run.one()
    if not covered:
        return GUESS_WRONG
    return None if small is False else (body or "")


def _listed_json(found, a, width: int):
    """aligned_json's answer from the listed statement's row (never None: rollup rows hold
    only values within MATERIALIZABLE, small enough for any aggregation)."""
    values, count, starts, covered = found
    if not covered:
        return GUESS_WRONG
    if not count:
        return ""
    # The buckets' starts come only when some buckets are missing.
    return regular_rows(a, width, values.split(","), starts)


# Built statements by shape. Every value of `q` that reaches one is a named parameter that
# aligned_json sets on each execution; the first request's values are only placeholders.
_STATEMENTS: dict[tuple, tuple[Select, PreparedStatement, PreparedStatement | None]] = {}


def listable(q: BucketQuery, level: RollupLevel) -> bool:
    """Whether a range of single rollup rows can be answered by the listed statement: one
    series, no group_by, buckets in UTC whose times repeat daily (regular_rows spells them)."""
    return not q.group_by and q.timezone is None and fits_grid(level.seconds)


def _selected(q: BucketQuery) -> Select:
    selected = select(series.c.id).where(
        series.c.metric_id == bindparam("al_metric", type_=BigInteger))
    if q.selection.tags:
        selected = selected.where(series.c.tags.contains(bindparam("al_tags", type_=JSONB)))
    return selected


def _statement(storage: StorageInfo, q: BucketQuery, level: RollupLevel, labelled: bool,
               single_rows: bool, edged: bool) -> Select:
    selected = _selected(q)
    lo, a = bindparam("al_lo", type_=TS), bindparam("al_a", type_=TS)
    b, hi = bindparam("al_b", type_=TS), bindparam("al_hi", type_=TS)
    # An edge that is empty (the range starts or ends on a boundary) reads no point.
    edges = [(lo, a), (b, hi)] if edged else []
    cover = Coverage(selected.scalar_subquery(), a, b, [], edges)
    rows = rollup_statement(storage, q, level, cover)
    label = bindparam("al_label", type_=Text) if labelled else None
    body = json_select(storage, q, rows, label).subquery("body")
    return select(*body.c, _covered(level, selected, a, b, single_rows, q.group_by))


def _listed_statement(q: BucketQuery, level: RollupLevel) -> Select:
    """A long range of single rollup rows as (values as JSON joined by commas, how many,
    the buckets' starts in Unix seconds or NULL, covered), for
    regular_rows to spell the rows.

    json_select's statement spent most of a year of hours spelling times and sorting the
    spelled rows again for string_agg's ORDER BY (PostgreSQL 15 sorts there even when the
    rows come sorted). Here the rows come in bucket order from a subquery that keeps its
    ORDER BY (PostgreSQL aggregates a sorted subquery's rows in their order, and does not
    merge such a subquery into the query around it), and only their values are spelled.
    Their starts are read, in a second pass, only when the range misses some buckets: the
    count differs from al_n, the buckets the range holds (CASE evaluates that subquery only
    then)."""
    selected = _selected(q)
    a, b = bindparam("al_a", type_=TS), bindparam("al_b", type_=TS)
    answer = _single_rows(q, level, selected, a, b).subquery("answer")
    listed = select(func.string_agg(json_value(q, answer.c.value), literal(",")).label("vals"),
                    func.count().label("n")).subquery("listed")
    again = _single_rows(q, level, selected, a, b).subquery("again")
    # An array of bigint: the driver reads it in C, where text would be parsed value by value.
    starts = select(func.array_agg(cast(func.date_part("epoch", again.c.bucket), BigInteger))
                    ).scalar_subquery()
    missing = listed.c.n != bindparam("al_n", type_=BigInteger)
    return select(listed.c.vals, listed.c.n, case((missing, starts), else_=None).label("starts"),
                  _covered(level, selected, a, b, True, ()))


def _single_rows(q: BucketQuery, level: RollupLevel, selected: Select, a, b) -> Select:
    """(bucket, value) of the one selected series' rollup rows in [a, b), in bucket order.
    The series is compared as one value (the smallest id: more than one, and the statement's
    covered flag is false): the rows then come in order from the table's primary key, where
    a series given as a set is joined and its rows sorted."""
    r = rollup_tables[level.name]
    one = selected.with_only_columns(func.min(series.c.id)).scalar_subquery()
    return (select(r.c.bucket, single_value(q.aggregation.name, r.c).label("value"))
            .where(r.c.series_id == one, r.c.bucket >= a, r.c.bucket < b,
                   r.c.count != literal_column(str(UNMATERIALIZED)))
            .order_by(r.c.bucket))


def _covered(level: RollupLevel, selected: Select, lo, hi, single_rows: bool,
             group_by: tuple[str, ...]):
    """True when coverage would find the whole level buckets [lo, hi) materialized, nothing
    stale, and some series selected (when the statement answers from single rows: exactly
    one, or with group_by one per group, a missing tag being a group of its own)."""
    log, wm, r = rollup_invalidations, rollup_watermarks, rollup_tables[level.name]
    ids = selected.scalar_subquery()
    count = select(func.count()).select_from(selected.subquery()).scalar_subquery()
    if not single_rows:
        enough = count > 0
    elif not group_by:
        enough = count == 1
    else:
        # DISTINCT takes missing tags (NULLs) as one value, as the answer's groups do.
        groups = selected.with_only_columns(*group_columns(group_by)).distinct().subquery()
        enough = and_(count > 0,
                      select(func.count()).select_from(groups).scalar_subquery() == count)
    return and_(
        exists().where(wm.c.level == level.name, wm.c.materialized_until >= hi),
        enough,
        ~exists().where(log.c.series_id.in_(ids), log.c.hi >= lo, log.c.lo < hi),
        # A constant, not a parameter: the partial index's predicate must match it.
        ~exists().where(r.c.series_id.in_(ids), r.c.bucket >= lo, r.c.bucket < hi,
                        r.c.count == literal_column(str(UNMATERIALIZED))),
    ).label("covered")
