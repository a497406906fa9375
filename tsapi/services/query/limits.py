"""The bounds a query must keep: buckets per range, rows per aggregated answer (estimated
before it runs), raw rows per page."""

from __future__ import annotations

from datetime import UTC, datetime

from tsapi.errors import InvalidInput, field_error
from tsapi.formats.intervals import BucketInterval
from tsapi.services.query.request import QueryRequest

# Buckets are aligned to 2000: a long one can start years before start_time, and none may
# start before this.
EARLIEST_BUCKET = datetime(1, 1, 3, tzinfo=UTC)


def check_bucket_count(request: QueryRequest, max_buckets: int) -> None:
    """InvalidInput (naming `interval`) when the range holds too many buckets."""
    interval = request.bucket_interval
    if interval is None:
        return
    width = interval.approx_seconds()
    if width * 2 > (request.start - EARLIEST_BUCKET).total_seconds():
        raise InvalidInput(
            f"Buckets of {interval} would start before year 1; use a shorter interval",
            errors=[field_error("interval", "reaches before year 1 from this start_time")])
    buckets = (request.end - request.start).total_seconds() / width
    if buckets > max_buckets:
        raise InvalidInput(
            f"The range holds about {int(buckets)} buckets of {interval}; the limit is "
            f"{max_buckets}: use a longer interval or a shorter range",
            errors=[field_error("interval", f"more than {max_buckets} buckets in the range")],
        )


def bucket_estimate(request: QueryRequest) -> int:
    """At most how many buckets the range holds: one without an interval, and one more than
    the range divided by the width (the first bucket can start before start_time)."""
    return buckets_between(request.start, request.end, request.bucket_interval)


def buckets_between(start: datetime, end: datetime, interval: BucketInterval | None) -> int:
    if interval is None:
        return 1
    return int((end - start).total_seconds() // interval.approx_seconds()) + 1


def check_result_cells(request: QueryRequest, groups_per_metric: list[int],
                       max_cells: int) -> None:
    """InvalidInput when metrics x series groups x buckets exceeds `max_cells`.

    `groups_per_metric` has one count per metric of the request, in its order (a metric
    listed twice is answered twice). The estimate is an upper bound taken before any point
    is read: filling makes every bucket of every group a row, and without fill the rows
    can come close to it, so the bound is what a worker has to be ready to hold.
    """
    buckets = bucket_estimate(request)
    cells = sum(groups_per_metric) * buckets
    if cells <= max_cells:
        return
    if request.group_by:
        field, advice = "group_by", "group by fewer or coarser tags, narrow `tags`"
    elif len(request.metrics) > 1:
        field, advice = "metrics", "ask for fewer metrics"
    else:
        field, advice = "interval", "use a longer interval"
    groups = max(groups_per_metric, default=0)
    raise InvalidInput(
        f"The answer would hold about {cells} rows ({len(request.metrics)} metric(s), up to "
        f"{groups} series group(s) each, {buckets} bucket(s)); the limit is {max_cells} "
        f"(TSAPI_MAX_QUERY_CELLS): {advice}, or use a shorter range",
        errors=[field_error(field, f"the answer would exceed {max_cells} rows")],
    )


def page_size(request: QueryRequest, max_rows: int) -> tuple[int, bool]:
    """Rows on one raw page, and whether the server cut the request's own limit."""
    asked = request.limit or max_rows
    return min(asked, max_rows), asked > max_rows
