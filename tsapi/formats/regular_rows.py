"""JSON rows of buckets on a regular grid, their times spelled from one day's slots.

The database spells a bucket row's time with to_json, one timestamptz at a time: for a year
of hourly buckets that was a quarter of the statement's time. Buckets of a width that divides
a day, starting on a multiple of it, have times known before anything is read: the date of
each day once, the time of day of each slot once (cached per width), joined in C loops. The
text is the database's: to_json spells a whole second in UTC as Python's isoformat does.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from itertools import chain, repeat
from operator import itemgetter

DAY = 86400
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY = date(1970, 1, 1)


def fits_grid(width: int) -> bool:
    """Whether buckets `width` seconds wide tile each UTC day (their times repeat daily)."""
    return 0 < width <= DAY and DAY % width == 0


def regular_rows(first: datetime, width: int, values: list[str],
                 starts: list[int] | None = None) -> str:
    """Rows {"time", "value"} joined by commas: `values` (JSON texts) of consecutive buckets
    `width` seconds wide (fits_grid) from `first` (whole seconds, on a multiple of the width
    since midnight UTC), or of the buckets starting at `starts` (Unix seconds, ascending)."""
    n = len(values)
    if not n:
        return ""
    first_second = (first - _EPOCH) // timedelta(seconds=1)
    base = first_second - first_second % DAY  # midnight UTC of the first bucket's day
    per_day = DAY // width
    lo = (first_second - base) // width  # the first bucket's slot in its day
    # Buckets from the first, one index each: every one, or those at `starts`.
    picked = None if starts is None else [(s - first_second) // width for s in starts]
    span = n if picked is None else picked[-1] + 1
    days = (lo + span - 1) // per_day + 1
    day0 = _EPOCH_DAY + timedelta(days=base // DAY)
    heads = ['{"time":"' + (day0 + timedelta(days=d)).isoformat() for d in range(days)]
    day_of = list(chain.from_iterable(repeat(h, per_day) for h in heads))[lo:lo + span]
    time_of = (_time_of_day(width) * days)[lo:lo + span]
    if picked is not None and span != n:
        pick = itemgetter(*picked) if n > 1 else lambda col: [col[picked[0]]]
        day_of, time_of = pick(day_of), pick(time_of)
    parts: list = [None] * (4 * n)
    parts[0::4] = day_of
    parts[1::4] = time_of
    parts[2::4] = values
    parts[3::4] = ["},"] * n
    parts[-1] = "}"
    return "".join(parts)


@lru_cache(maxsize=8)
def _time_of_day(width: int) -> list[str]:
    return [f'T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}+00:00","value":'
            for s in range(0, DAY, width)]
