"""POST /query as a use case: checked, planned, answered from the cache when fresh."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy.exc import DBAPIError

from tsapi.errors import ResultOutOfRange
from tsapi.formats.rendering import Rendered
from tsapi.services.query.cache_keys import cached_answer
from tsapi.services.query.execute import (
    execute,
    resolve_metrics,
    series_groups,
    stream_export,
)
from tsapi.services.query.limits import check_bucket_count, check_result_cells
from tsapi.services.query.one_statement import answer_alone, plan_alone
from tsapi.services.query.planner import (
    BucketPlan,
    RollupPlan,
    plan_export,
    plan_query,
    streams,
)
from tsapi.services.query.request import QueryRequest
from tsapi.services.redis_riders import settle
from tsapi.services.runtime import Runtime
from tsapi.store.engine import numeric_overflow
from tsapi.store.prepared import PreparedStatementLost


def run_query(rt: Runtime, request: QueryRequest, fmt: str) -> Rendered | Iterator[bytes]:
    """The response body (and headers) for a /query request in `fmt`; an iterator of chunks
    for a streamed export."""
    check_bucket_count(request, rt.limits.max_query_buckets)
    if streams(request, fmt):
        settle()  # before the work, what rides Redis (the rate limit) is sent
        return _export(rt, request, fmt)
    key, hit = cached_answer(request, fmt, rt.cache)
    settle()  # sent with the cache lookup, or now when there was none (tsapi.services.redis_riders)
    if hit is not None:
        return Rendered(*hit)
    rendered = _answer(rt, request, fmt)
    if key and len(rendered.body) <= rt.limits.max_cached_bytes:
        rt.cache.set(key, (rendered.body, rendered.mimetype, rendered.headers))
    return rendered


def _answer(rt: Runtime, request: QueryRequest, fmt: str) -> Rendered:
    try:
        try:
            return _answer_once(rt, request, fmt)
        except PreparedStatementLost:
            # Its session lost what it had prepared (DISCARD ALL, DEALLOCATE): the
            # transaction is undone and the session knows to prepare again; nothing was
            # answered yet.
            return _answer_once(rt, request, fmt)
    except DBAPIError as exc:
        if numeric_overflow(exc):
            # A domain error, so that InfluxQL reports it as its statement's error.
            raise ResultOutOfRange() from None
        raise


def _answer_once(rt: Runtime, request: QueryRequest, fmt: str) -> Rendered:
    db = rt.db
    alone = plan_alone(rt, request, fmt)
    with db.reader().connect() as conn:
        if alone is not None:
            answered = answer_alone(rt, conn, request, alone)
            if answered is not None:
                return answered
        # One snapshot for all of a request's statements: a page and the cursor after it, or
        # buckets and their fill seeds, must not see different data.
        conn.execution_options(isolation_level="REPEATABLE READ")
        metrics = resolve_metrics(conn, request, db.metric_cache)
        plan = plan_query(request, fmt, metrics, rt.limits.max_raw_rows, rollups=rt.rollups)
        bucket_plan = plan.buckets if isinstance(plan, RollupPlan) else plan
        if isinstance(bucket_plan, BucketPlan):
            # Refused before a point is read: the answer's size is known from the catalog.
            check_result_cells(request, series_groups(conn, bucket_plan),
                               rt.limits.max_query_cells)
        # A guess answer_alone found wrong is not made again (the same statement).
        return execute(conn, db.storage, plan, guess=alone is None)


def _export(rt: Runtime, request: QueryRequest, fmt: str) -> Iterator[bytes]:
    # The metrics are looked up now, so an unknown one is a 404 before the response starts.
    with rt.db.reader().connect() as conn:
        metrics = resolve_metrics(conn, request)
    return stream_export(rt.db, plan_export(request, fmt, metrics))
