"""A rollup answer in one round trip: no metric lookup, no transaction, one statement.

The usual path (use_case._answer) opens a REPEATABLE READ transaction, looks the metrics up
and then reads: BEGIN, SELECT, SELECT, ROLLBACK for the smallest answer, whose statements
take less time in the database than the round trips around them. A JSON request without
fill or time zone, of one numeric metric this process already knows (the catalog's
MetricCache), whose range holds whole level buckets, is answered here by rollup_aligned's
statement alone: one statement is one snapshot, so it needs no transaction.

A cached metric is never trusted blindly. Ids are never reused and a type never changes
under an id; a metric deleted (and maybe made anew under the same name, with a new id) took
its series with it in the same transaction, so the statement finds no series under the old
id, calls its guess wrong, and the request goes the usual way, which looks the name up
again. What the usual path looks up is remembered for the next request.
"""

from __future__ import annotations

from sqlalchemy import Connection

from tsapi.errors import BadRequest, InvalidInput
from tsapi.formats.rendering import Rendered, json_array
from tsapi.services.query.execute import ANSWERED_FROM, series_groups
from tsapi.services.query.limits import check_result_cells
from tsapi.services.query.planner import RollupPlan, check_aggregable, plan_query
from tsapi.services.query.request import QueryRequest
from tsapi.services.runtime import Runtime
from tsapi.store.rollup_aligned import GUESS_WRONG, aligned, aligned_json
from tsapi.store.statement_alone import statements_alone


def plan_alone(rt: Runtime, request: QueryRequest, fmt: str) -> RollupPlan | None:
    """The plan answered by answer_alone, or None: the usual path answers."""
    if not rt.rollups or fmt != "json" or request.timezone or len(request.metrics) != 1:
        return None
    known = rt.db.metric_cache.get_all(request.metrics)
    if known is None:
        return None
    metrics = [known[name] for name in request.metrics]
    try:
        # A cached type may be a deleted metric's: a refusal is left to the usual path.
        for metric in metrics:
            check_aggregable(request.aggregation, metric)
        plan = plan_query(request, fmt, metrics, rt.limits.max_raw_rows, rollups=True)
    except BadRequest:
        return None
    if not isinstance(plan, RollupPlan) or plan.buckets.fill != "none":
        return None
    if not all(aligned(q, plan.level) for q in plan.buckets.queries):
        return None
    return plan


def answer_alone(rt: Runtime, conn: Connection, request: QueryRequest,
                 plan: RollupPlan) -> Rendered | None:
    """The answer from one statement on `conn` (a connection just checked out); None when
    the statement's guess was wrong: nothing it read is used."""
    (q,) = plan.buckets.queries
    level = plan.level
    with statements_alone(conn):
        # Checked before the answer is read, as on the usual path (with group_by, a count of
        # groups: a statement of its own, whose snapshot the answer need not share).
        try:
            check_result_cells(request, series_groups(conn, plan.buckets),
                               rt.limits.max_query_cells)
        except InvalidInput:
            # Refused by the usual path, which looks the name up first: the remembered id
            # may be a deleted metric's, whose answer is a 404.
            return None
        found = aligned_json(conn, rt.db.storage, q, level, plan.output.label(q.selection.metric))
    if found is GUESS_WRONG or found is None:
        return None  # not all rolled up and valid, or values too large to combine
    rendered = json_array([found])
    rendered.headers[ANSWERED_FROM] = f"rollup-{level.name}" if found else "raw"
    return rendered
