"""Batches of up to SMALL_BATCH points: one prepared statement, one round trip."""

from __future__ import annotations

import re
from typing import NamedTuple

import psycopg2
from sqlalchemy import Connection, Engine, TextClause, text
from sqlalchemy.exc import DBAPIError

from tsapi.store.catalog import Metric, RetryableConflict
from tsapi.store.statement_alone import begin_alone, end_alone

# Up to this many points, one statement from arrays beats COPY: COPY's savepoint and its
# fallback cost three extra round trips, which dominate a small batch.
SMALL_BATCH = 1000


# The two statements below store a batch's points and log its series' spans alike; only how
# they lock and widen the metrics differs. What they share is written once here, so that
# they cannot drift apart: the same upsert and, above all, the same lock order on the rows
# (two batches, each run by either statement, cannot deadlock on them). Each statement puts
# its own guard (its metrics all locked) after each fragment's FROM.
# The points, from four arrays unnested side by side …
_POINTS_FROM_ARRAYS = """
    INSERT INTO points (time, series_id, value_num, value_text)
    SELECT incoming.* FROM unnest(
        CAST(:times AS timestamptz[]), CAST(:sids AS bigint[]),
        CAST(:nums AS float8[]), CAST(:texts AS text[])
    ) AS incoming(time, series_id, value_num, value_text)"""
# … upserted in one order:
_POINTS_UPSERTED_IN_ORDER = """
    ORDER BY series_id, time  -- every batch takes the rows' locks in one order: no deadlock
    ON CONFLICT (series_id, time) DO UPDATE
        SET value_num = excluded.value_num, value_text = excluded.value_text"""
# Each numeric series' span, logged for the rollups (as tsapi.store.rollup_log.LOG_SPANS does).
_SPANS_LOGGED = """
    INSERT INTO rollup_invalidations (series_id, lo, hi)
    SELECT * FROM unnest(CAST(:log_sids AS bigint[]), CAST(:log_los AS timestamptz[]),
                         CAST(:log_his AS timestamptz[]))"""

# A small batch in one statement, one round trip: lock its metrics (FOR KEY SHARE, in id order,
# as lock_metrics does; a metric deleted meanwhile is missing, and then nothing is stored),
# upsert the points, log the spans, then widen first/last seen, locking the rows it widens
# in id order so that two batches cannot deadlock on them.
# Plain SQL text with bound arrays: the same text for every batch, so SQLAlchemy caches it
# (a Core INSERT … FROM SELECT … ON CONFLICT is recompiled on every execution: ~2 ms).
# Composed at import of the constants here alone: static text, every value bound.
# Its guard, in each part that writes: every metric of the batch was locked (none deleted).
_ALL_LOCKED = "(SELECT count(*) FROM locked) = cardinality(CAST(:ids AS bigint[]))"
_STORE_SMALL_SQL = f"""
WITH locked AS (
    SELECT id FROM metrics WHERE id = ANY(CAST(:ids AS bigint[]))
    ORDER BY id FOR KEY SHARE
), stored AS ({_POINTS_FROM_ARRAYS}
    WHERE {_ALL_LOCKED}{_POINTS_UPSERTED_IN_ORDER}
), logged AS ({_SPANS_LOGGED}
    WHERE {_ALL_LOCKED}
), span AS (
    SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:los AS timestamptz[]),
                         CAST(:his AS timestamptz[])) AS span(id, lo, hi)
), widening AS (
    SELECT m.id FROM metrics m JOIN span ON span.id = m.id
    WHERE m.id IN (SELECT id FROM locked)
      AND {_ALL_LOCKED}
      AND (m.first_seen IS NULL OR span.lo < m.first_seen OR span.hi > m.last_seen)
    ORDER BY m.id FOR NO KEY UPDATE OF m
), widened AS (
    UPDATE metrics m
    SET first_seen = least(m.first_seen, span.lo), last_seen = greatest(m.last_seen, span.hi)
    FROM span WHERE m.id = span.id AND m.id IN (SELECT id FROM widening)
    RETURNING m.id
)
SELECT (SELECT count(*) FROM locked) AS locked, (SELECT count(*) FROM widened) AS widened
"""

# A batch of one metric (a device's reading, a 1-point write: the usual small batch) in a
# statement of the same parameters without what several metrics need: no lock order to
# keep (one metrics row), so its row is locked by its own id and widened by a plain UPDATE
# (which locks it FOR NO KEY UPDATE itself), with no span table, joins or sorts around it.
# The same locks in the same order as the statement above, for ~30 % less of the database's
# CPU (1 point: 390 against 545 us a statement, backend CPU, same run, load 6).
_STORE_ONE_METRIC_SQL = f"""
WITH locked AS (
    SELECT id FROM metrics WHERE id = (CAST(:ids AS bigint[]))[1] FOR KEY SHARE
), stored AS ({_POINTS_FROM_ARRAYS}
    WHERE EXISTS (SELECT FROM locked){_POINTS_UPSERTED_IN_ORDER}
), logged AS ({_SPANS_LOGGED}
    WHERE EXISTS (SELECT FROM locked)
), widened AS (
    UPDATE metrics m
    SET first_seen = least(m.first_seen, (CAST(:los AS timestamptz[]))[1]),
        last_seen = greatest(m.last_seen, (CAST(:his AS timestamptz[]))[1])
    WHERE m.id = (CAST(:ids AS bigint[]))[1] AND EXISTS (SELECT FROM locked)
      AND (m.first_seen IS NULL OR (CAST(:los AS timestamptz[]))[1] < m.first_seen
           OR (CAST(:his AS timestamptz[]))[1] > m.last_seen)
    RETURNING m.id
)
SELECT (SELECT count(*) FROM locked) AS locked, (SELECT count(*) FROM widened) AS widened
"""

# The statements are prepared on the server once per connection (PREPARE) and then only
# EXECUTEd: parsing, analysing and planning one took longer than running it (1-point batch,
# in-process: 1.07 ms a statement as text, 0.29 ms prepared; 50 points 1.32 / 0.71 ms).
# A prepared statement lives as long as its session, whatever the transaction does, and the
# server re-plans it by itself after a schema change; the pool's per-connection `info` is
# cleared whenever the connection is replaced, so a new session prepares it again.
# Each parameter's type, in the order of $1, $2, …: nums is text (see store_small_batch).
_PARAMETERS = {
    "ids": "bigint[]", "times": "timestamptz[]", "sids": "bigint[]", "nums": "text[]",
    "texts": "text[]", "los": "timestamptz[]", "his": "timestamptz[]",
    "log_sids": "bigint[]", "log_los": "timestamptz[]", "log_his": "timestamptz[]",
}
_POSITION = {name: n for n, name in enumerate(_PARAMETERS, start=1)}


class PreparedBatchStatement(NamedTuple):
    """A statement's name in the session, its PREPARE, and its EXECUTE in the driver's own
    parameter style: sent with exec_driver_sql, which skips SQLAlchemy's compiled-statement
    lookup and parameter processing (all strings here): 58 against 82 us of the worker's CPU
    a call (a statement of ten parameters, same run). Still bound: psycopg2 quotes each."""

    name: str
    prepare: TextClause
    execute: str


def _prepared(name: str, sql: str) -> PreparedBatchStatement:
    return PreparedBatchStatement(name, text(
        f"PREPARE {name} ({', '.join(_PARAMETERS.values())}) AS "
        + re.sub(r"(?<![:\w]):(\w+)", lambda m: f"${_POSITION[m[1]]}", sql)
    ), f"EXECUTE {name} ({', '.join(f'%({n})s' for n in _PARAMETERS)})")


ANY_METRICS = _prepared("tsapi_store_small_batch", _STORE_SMALL_SQL)
ONE_METRIC = _prepared("tsapi_store_one_metric", _STORE_ONE_METRIC_SQL)
STATEMENTS = (ANY_METRICS, ONE_METRIC)


def store_small_batch(conn: Connection, sids: list[int], times: list, values: list,
                      spans: dict[str, list], known: dict[str, Metric],
                      series_spans: dict[int, list]) -> bool:
    """Store up to SMALL_BATCH points, given column-wise with no (series, time) twice, in
    `conn`'s transaction; returns whether any metric's first/last seen moved."""
    statement, parameters, metrics_count = _statement(sids, times, values, spans, known,
                                                      series_spans)
    session = conn.connection.info
    if statement.name not in session:
        conn.execute(statement.prepare)
        session[statement.name] = True
    locked, widened = conn.exec_driver_sql(statement.execute, parameters).one()
    return _outcome(locked, widened, metrics_count)


def store_small_batch_alone(engine: Engine, sids: list[int], times: list, values: list,
                            spans: dict[str, list], known: dict[str, Metric],
                            series_spans: dict[int, list]) -> bool:
    """store_small_batch for a batch whose ids all came from the caches: its one statement,
    atomic by itself, runs alone (autocommit: it commits in its own round trip, as durably,
    with no COMMIT after it) on a pooled connection's own cursor. SQLAlchemy's Connection
    around one statement cost more of the worker's CPU than the statement itself: 153
    against 51 us a write (checkout, execute, commit, checkin; same run). The pool's checkout
    and checkin events still run (tsapi.store.engine's ping of an idle connection), and a
    driver error is raised as SQLAlchemy's, the connection invalidated when it was lost, as
    a Connection would."""
    statement, parameters, metrics_count = _statement(sids, times, values, spans, known,
                                                      series_spans)
    pooled = engine.raw_connection()
    try:
        driver = pooled.dbapi_connection
        begin_alone(driver)
        try:
            with driver.cursor() as cursor:
                if statement.name not in pooled.info:
                    cursor.execute(statement.prepare.text)
                    pooled.info[statement.name] = True
                cursor.execute(statement.execute, parameters)
                locked, widened = cursor.fetchone()
        except psycopg2.Error as exc:
            lost = engine.dialect.is_disconnect(exc, driver, None)
            if lost:
                # As a Connection does on a disconnect: this session is replaced, and so is
                # every session pooled before it (the same restart or failover lost those):
                # the engine takes a new pool (public API; the sessions other requests hold
                # now go back to the old pool, which nothing checks out from again).
                pooled.invalidate(exc)
                engine.dispose()
            raise DBAPIError.instance(statement.execute, parameters, exc, psycopg2.Error,
                                      connection_invalidated=lost) from exc
        finally:
            end_alone(driver)
    finally:
        pooled.close()
    return _outcome(locked, widened, metrics_count)


def _statement(sids: list[int], times: list, values: list, spans: dict[str, list],
               known: dict[str, Metric], series_spans: dict[int, list]
               ) -> tuple[PreparedBatchStatement, dict[str, str], int]:
    """The statement for these rows, its parameters, and how many metrics it must lock."""
    # Each distinct time's text once: a batch repeats its times (one line of line protocol
    # holds several points), and the spans below are times of the batch.
    stamp = {time: time.isoformat() for time in set(times)}.__getitem__
    if any(isinstance(value, str) for value in values):
        nums = ["NULL" if isinstance(v, str) else repr(v) for v in values]
        texts = [_quoted(v) if isinstance(v, str) else "NULL" for v in values]
    else:
        # As text: float8's own input keeps the sign of -0.0 and every bit (repr gives the
        # shortest text that reads back as the identical double).
        nums = list(map(repr, values))
        texts = ["NULL"] * len(values)
    rows = sorted((known[n].id, lo, hi) for n, (lo, hi) in spans.items())
    statement = ONE_METRIC if len(rows) == 1 else ANY_METRICS
    return statement, {
        "times": _array(map(stamp, times)),
        "sids": _array(map(str, sids)),
        "nums": _array(nums),
        "texts": _array(texts),
        "ids": _array(str(r[0]) for r in rows),
        "los": _array(stamp(r[1]) for r in rows),
        "his": _array(stamp(r[2]) for r in rows),
        # The rollup invalidation log (tsapi.store.rollup_log), in the same statement.
        "log_sids": _array(map(str, series_spans)),
        "log_los": _array(stamp(lo) for lo, _ in series_spans.values()),
        "log_his": _array(stamp(hi) for _, hi in series_spans.values()),
    }, len(rows)


def _outcome(locked: int, widened: int, metrics_count: int) -> bool:
    if locked != metrics_count:
        raise RetryableConflict("a metric was deleted while the batch was being written")
    return widened > 0


# Each array travels as one bound string in PostgreSQL's array syntax ('{a,b,NULL}'), which
# the prepared statement's parameter type reads: psycopg2 would otherwise write each element
# as its own literal with a cast (ARRAY['…'::timestamptz, …]), slower to build and to parse
# (50 points: ~0.24 ms less client CPU and ~0.2 ms less server CPU a batch). Still a bound
# parameter: psycopg2 quotes the string, and every element is quoted or plain by the rules
# below, so no value can end an element or the array early.
def _array(elements) -> str:
    return "{" + ",".join(elements) + "}"


def _quoted(value: str) -> str:
    """A text element: double-quoted, with backslash and double quote escaped (a quoted
    NULL is the string 'NULL', not a null)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
