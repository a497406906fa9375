"""Level buckets in Python: flooring times, and per-series time windows as SQL arrays."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import BigInteger, DateTime, bindparam, cast, func
from sqlalchemy.dialects.postgresql import ARRAY

from tsapi.config import RollupLevel

TS = DateTime(timezone=True)
# Minute and hour buckets start at the same instants counted from here as from time_bucket's
# origin (2000-01-03, a midnight).
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The last instant Python represents. Only the last level bucket of year 9999 would end past
# it: such a bucket or window ends here instead (no watermark ever reaches it).
END_OF_TIME = datetime.max.replace(tzinfo=UTC)
Window = tuple[int, datetime, datetime]  # series id, [lo, hi)


def floor_to(t: datetime, level: RollupLevel) -> datetime:
    width = timedelta(seconds=level.seconds)
    return EPOCH + ((t - EPOCH) // width) * width


def floor_sql(column, level: RollupLevel):
    """floor_to in SQL: the start of the level bucket holding `column`'s time."""
    return func.date_bin(timedelta(seconds=level.seconds), column, cast(EPOCH, TS))


def later(t: datetime, span: timedelta) -> datetime:
    """t + span, or END_OF_TIME where that would leave year 9999."""
    return t + span if t <= END_OF_TIME - span else END_OF_TIME


def ceil_to(t: datetime, level: RollupLevel) -> datetime:
    low = floor_to(t, level)
    return low if low == t else later(low, timedelta(seconds=level.seconds))


def window_arrays(windows: Iterable[tuple[int, datetime, datetime]], name: str = "win"):
    """Windows (series id, lo, hi) as a table of three unnested arrays: one statement text
    whatever their number."""
    rows = list(windows)
    return func.unnest(
        cast(bindparam(f"{name}_sids", [r[0] for r in rows]), ARRAY(BigInteger)),
        cast(bindparam(f"{name}_los", [r[1] for r in rows]), ARRAY(TS)),
        cast(bindparam(f"{name}_his", [r[2] for r in rows]), ARRAY(TS)),
    ).table_valued("sid", "lo", "hi").render_derived(name=name)


def merge_windows(windows: list[tuple[int, datetime, datetime]]):
    """Per series, overlapping or touching [lo, hi) windows joined: no point counted twice."""
    merged: list[list] = []
    for sid, lo, hi in sorted(windows):
        if merged and merged[-1][0] == sid and lo <= merged[-1][2]:
            merged[-1][2] = max(merged[-1][2], hi)
        else:
            merged.append([sid, lo, hi])
    return [tuple(w) for w in merged]


def level_windows(spans, level: RollupLevel, lo_bound: datetime | None,
                  hi_bound: datetime | None):
    """Logged spans [lo, hi] (both included) as the level's whole buckets they touch,
    clipped to [lo_bound, hi_bound), merged per series."""
    width = timedelta(seconds=level.seconds)
    out = []
    for sid, lo, hi in spans:
        a, b = floor_to(lo, level), later(floor_to(hi, level), width)
        if lo_bound is not None:
            a = max(a, lo_bound)
        if hi_bound is not None:
            b = min(b, hi_bound)
        if a < b:
            out.append((sid, a, b))
    return merge_windows(out)
