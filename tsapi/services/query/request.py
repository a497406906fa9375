"""A /query request as the use case reads it: validated, typed and immutable."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from tsapi.formats.aggregations import Aggregation
from tsapi.formats.intervals import BucketInterval

TagFilter = dict[str, str | tuple[str, ...]]  # a string for equality, a tuple for any of


@dataclass(frozen=True)
class QueryRequest:
    """What to read and how to shape it; built by the HTTP schema, read by the planner.

    Every field shapes the answer, so every field is part of the cache key (cache_keys.py).
    """

    metrics: tuple[str, ...]
    start: datetime  # inclusive, UTC
    end: datetime  # exclusive, UTC
    multi: bool = False  # asked for as a list of metrics: each row names its metric
    aggregation: Aggregation | None = None  # None: raw points
    interval: BucketInterval | None = None  # only counts with an aggregation
    timezone: str | None = None  # IANA name: buckets and times in local time
    tags: TagFilter = field(default_factory=dict)
    group_by: tuple[str, ...] = ()
    fill: str = "none"
    descending: bool = False
    limit: int | None = None  # raw rows asked for (the server caps it)
    cursor: str | None = None  # where a raw page starts, as issued with the previous one
    format: str | None = None  # json, csv or ndjson; None: negotiated from the Accept header

    @property
    def raw(self) -> bool:
        return self.aggregation is None

    @property
    def bucket_interval(self) -> BucketInterval | None:
        """The bucket width in effect: without an aggregation, an interval means nothing
        (the first service returned raw points then, and that meaning stays)."""
        return None if self.aggregation is None else self.interval

    @property
    def paged(self) -> bool:
        """A raw request that asked for a page (a limit or a cursor), not a whole export."""
        return self.limit is not None or self.cursor is not None
