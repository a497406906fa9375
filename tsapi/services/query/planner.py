"""From a request to a plan: the statements that answer it, and how their rows leave.

Three kinds of plan: a raw page (cut at a limit, with a cursor to the next page), buckets
(an aggregate per interval, maybe filled) and a streamed raw export (CSV or NDJSON of any
size). Planning is pure: it needs the request's metrics looked up, nothing else. Another
kind (a rollup, say) is one more plan class here and one more branch in execute.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tsapi.config import RollupLevel
from tsapi.errors import BadRequest
from tsapi.formats import aggregations
from tsapi.formats.aggregations import Aggregation
from tsapi.formats.fill import NEEDS_NUMBERS, SEEDED
from tsapi.services.query.cursor import PageCursor, decode_cursor
from tsapi.services.query.limits import page_size
from tsapi.services.query.request import QueryRequest
from tsapi.services.query.rollup_choice import choose_level
from tsapi.store.buckets import BucketQuery
from tsapi.store.catalog import Metric
from tsapi.store.queries import RawQuery, Selection


@dataclass(frozen=True)
class Output:
    """How rows leave: the format, tag columns, metric names, and the zone of their times."""

    fmt: str
    group_by: tuple[str, ...] = ()
    multi: bool = False  # rows name their metric
    timezone: str | None = None

    def label(self, metric: Metric) -> str | None:
        return metric.name if self.multi else None


@dataclass(frozen=True)
class RawPagePlan:
    """Raw rows across the metrics in order, from `start`, at most `page_size` of them."""

    request: QueryRequest  # what the next page's cursor is tied to
    output: Output
    queries: tuple[RawQuery, ...]  # one per metric; the executor sets each one's limit
    start: PageCursor
    page_size: int
    capped_at: int | None = None  # the server's maximum, when it cut the request's limit

    @property
    def issues_cursor(self) -> bool:
        # Rows ordered by tags first have no single time key to resume from.
        return not self.output.group_by


@dataclass(frozen=True)
class BucketPlan:
    """One aggregate per bucket (or for the whole range) and group, metric after metric."""

    output: Output
    queries: tuple[BucketQuery, ...]
    fill: str = "none"  # a mode of formats.fill; "none" without an interval
    seeded: bool = False  # fill starts from the last point before the range


@dataclass(frozen=True)
class ExportPlan:
    """Every raw row, streamed from a server-side cursor: memory stays flat at any size."""

    output: Output
    queries: tuple[RawQuery, ...]


@dataclass(frozen=True)
class RollupPlan:
    """Buckets answered from a rollup level where it is materialized and valid, from raw
    points elsewhere (store.rollup_reads); the same rows as the bucket plan would give."""

    buckets: BucketPlan
    level: RollupLevel

    @property
    def output(self) -> Output:
        return self.buckets.output


Plan = RawPagePlan | BucketPlan | RollupPlan | ExportPlan


def streams(request: QueryRequest, fmt: str) -> bool:
    """A whole raw CSV/NDJSON export: streamed, never cached (JSON is one document)."""
    return fmt != "json" and request.raw and not request.paged


def check_aggregable(aggregation: Aggregation | None, metric: Metric) -> None:
    """BadRequest when a numbers-only aggregation meets a string metric."""
    if aggregation and aggregation.numeric_only and metric.value_type != "number":
        raise BadRequest(
            f"Aggregation '{aggregation.name}' is only supported for numeric metrics; "
            f"metric '{metric.name}' holds strings (use {aggregations.any_type_words()})"
        )


def plan_query(request: QueryRequest, fmt: str, metrics: Sequence[Metric],
               max_raw_rows: int, rollups: bool = False) -> Plan:
    """The plan answering `request` in `fmt`, given its metrics looked up (in its order);
    with `rollups`, combinable aggregates read the coarsest rollup level that lines up."""
    if streams(request, fmt):
        return plan_export(request, fmt, metrics)
    output = _output(request, fmt)
    if request.aggregation is None:
        size, capped = page_size(request, max_raw_rows)
        return RawPagePlan(request, output, _raw_queries(request, metrics),
                           decode_cursor(request), size, max_raw_rows if capped else None)
    plan = _bucket_plan(request, request.aggregation, output, metrics)
    level = choose_level(request, metrics) if rollups else None
    return RollupPlan(plan, level) if level else plan


def plan_export(request: QueryRequest, fmt: str, metrics: Sequence[Metric]) -> ExportPlan:
    """The streamed export of a raw request (when `streams` says it is one)."""
    return ExportPlan(_output(request, fmt), _raw_queries(request, metrics))


def _output(request: QueryRequest, fmt: str) -> Output:
    return Output(fmt, request.group_by, request.multi, request.timezone)


def _raw_queries(request: QueryRequest, metrics: Sequence[Metric]) -> tuple[RawQuery, ...]:
    return tuple(RawQuery(Selection(m, request.tags), request.start, request.end,
                          request.descending, None, None, request.group_by) for m in metrics)


def _bucket_plan(request: QueryRequest, aggregation: Aggregation, output: Output,
                 metrics: Sequence[Metric]) -> BucketPlan:
    for metric in metrics:
        if (metric.value_type == "string" and aggregation.picks_a_point
                and request.fill in NEEDS_NUMBERS):
            raise BadRequest(
                f"fill '{request.fill}' needs numbers; '{aggregation.name}' of metric "
                f"'{metric.name}' gives strings (use null or previous)")
    interval = request.bucket_interval
    queries = tuple(
        BucketQuery(Selection(m, request.tags), request.start, request.end, aggregation,
                    interval, request.timezone, request.group_by) for m in metrics)
    fill = request.fill if interval is not None else "none"
    # A point's own value only stands in for a bucket whose aggregate is such a value
    # (an average, a percentile, a first...), never for a count, a sum or a rate.
    seeded = fill in SEEDED and aggregations.keeps_values(aggregation)
    return BucketPlan(output, queries, fill, seeded)
