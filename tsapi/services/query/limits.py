"""The bounds a query must keep: buckets per range, raw rows per page."""

from __future__ import annotations

from datetime import UTC, datetime

from tsapi.errors import InvalidInput, field_error
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


def page_size(request: QueryRequest, max_rows: int) -> tuple[int, bool]:
    """Rows on one raw page, and whether the server cut the request's own limit."""
    asked = request.limit or max_rows
    return min(asked, max_rows), asked > max_rows
