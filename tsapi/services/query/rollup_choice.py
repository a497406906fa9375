"""Which rollup level, if any, can answer a bucket request exactly.

A level qualifies when every query bucket is a union of whole level buckets: the level's
width divides the interval (any number of months qualifies: months start at midnight), and
in the request's time zone every UTC offset in effect over the range is a whole number of
levels and every offset change falls on a level boundary. So UTC and every zone with
whole-hour offsets (Europe/*, America/New_York, ... with their DST) use the 1-hour level for
hourly or longer intervals; zones with half- or quarter-hour offsets (Asia/Kolkata,
Asia/Kathmandu, Australia/Adelaide) use the 1-minute level; offsets in seconds (local mean
time before about 1900) use raw points.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tsapi.config import ROLLUP_LEVELS, RollupLevel
from tsapi.services.query.request import QueryRequest
from tsapi.store.catalog import Metric
from tsapi.store.rollup_reads import COMBINABLE

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Offsets are sampled this often; no zone has kept an offset for less than a day.
SAMPLE_STEP = timedelta(hours=12)
MAX_SAMPLES = 50_000  # about 68 years; longer zoned ranges read raw points
_MICROSECOND = timedelta(microseconds=1)


def choose_level(request: QueryRequest, metrics: Sequence[Metric]) -> RollupLevel | None:
    """The coarsest level that answers the request exactly; None: raw points only."""
    aggregation = request.aggregation
    if aggregation is None or aggregation.name not in COMBINABLE:
        return None
    if any(m.value_type != "number" for m in metrics):
        return None
    interval = request.bucket_interval
    for level in reversed(ROLLUP_LEVELS):
        if interval is None:
            return level  # one bucket for the whole range: the edges are read raw
        if not interval.is_monthly and interval.micros % (level.seconds * 1_000_000):
            continue
        if request.timezone is None or zone_aligned(request.timezone, level.seconds,
                                                    request.start, request.end):
            return level
    return None


def zone_aligned(timezone: str, seconds: int, start: datetime, end: datetime) -> bool:
    """Whether the zone's offsets over [start, end] are whole multiples of `seconds` and
    change only on multiples of it (UTC)."""
    zone = ZoneInfo(timezone)
    width = timedelta(seconds=seconds)

    def offset(t: datetime) -> timedelta:
        return t.astimezone(zone).utcoffset() or timedelta(0)

    if (end - start) / SAMPLE_STEP > MAX_SAMPLES:
        return False
    t, current = start, offset(start)
    if current % width:
        return False
    while t < end:
        nxt = min(t + SAMPLE_STEP, end)
        after = offset(nxt)
        if after != current:
            if after % width or _change_at(t, nxt, offset, current) % width:
                return False
            current = after
        t = nxt
    return True


def _change_at(lo: datetime, hi: datetime, offset, before: timedelta) -> timedelta:
    """The first instant in (lo, hi] whose offset differs from `before`, since the epoch."""
    while hi - lo > _MICROSECOND:
        mid = lo + (hi - lo) // 2
        if offset(mid) == before:
            lo = mid
        else:
            hi = mid
    return hi - EPOCH
