"""Bucket intervals: parsed from words ("15 minutes") or shorthand ("15m"), never trusted as SQL."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

# Unit words (singular, plural and shorthand) to (months, seconds) per unit.
_UNITS: dict[str, tuple[int, int]] = {}
for _names, _value in (
    (("microsecond", "microseconds", "us"), (0, 0)),
    (("millisecond", "milliseconds", "ms"), (0, 0)),
    (("second", "seconds", "sec", "secs", "s"), (0, 1)),
    (("minute", "minutes", "min", "mins", "m"), (0, 60)),
    (("hour", "hours", "hr", "hrs", "h"), (0, 3600)),
    (("day", "days", "d"), (0, 86400)),
    (("week", "weeks", "w"), (0, 7 * 86400)),
    (("month", "months", "mon", "mons", "mo"), (1, 0)),
    (("year", "years", "y"), (12, 0)),
):
    for _name in _names:
        _UNITS[_name] = _value

_MICROS = {"microsecond": 1, "microseconds": 1, "us": 1,
           "millisecond": 1000, "milliseconds": 1000, "ms": 1000}

MAX_YEARS = 1000
# ASCII digits only (`\d` also matches '١٢٣', which int() reads as 123); up to 18, so any
# width up to MAX_YEARS can be written in seconds (InfluxQL's GROUP BY time(9223372036s)).
_PATTERN = re.compile(r"^\s*([0-9]{1,18})\s*([a-z]+)\s*$")


class IntervalError(ValueError):
    """The text is not an interval this service accepts; the message says why."""


@dataclass(frozen=True)
class BucketInterval:
    """A positive bucket width: either whole months or a fixed number of microseconds."""

    months: int = 0
    micros: int = 0

    @property
    def is_monthly(self) -> bool:
        return self.months > 0

    def as_timedelta(self) -> timedelta:
        if self.is_monthly:
            raise ValueError("a month-based interval has no fixed length")
        return timedelta(microseconds=self.micros)

    def approx_seconds(self) -> float:
        """Width in seconds, months counted as 30.44 days: only for bucket-count limits."""
        return self.months * 30.436875 * 86400 + self.micros / 1e6

    def __str__(self) -> str:  # the normalized PostgreSQL spelling, e.g. "15 minutes"
        if self.is_monthly:
            return f"{self.months} month" + ("s" if self.months != 1 else "")
        for unit, size in (("week", 604800_000000), ("day", 86400_000000),
                           ("hour", 3600_000000), ("minute", 60_000000),
                           ("second", 1_000000), ("millisecond", 1000)):
            if self.micros % size == 0:
                n = self.micros // size
                return f"{n} {unit}" + ("s" if n != 1 else "")
        return f"{self.micros} microseconds"


def parse_interval(raw: str) -> BucketInterval:
    """Parse '1 hour', '15 minutes', '15m', '1mo', '2 weeks'. One number and one unit."""
    match = _PATTERN.match(raw.lower()) if isinstance(raw, str) else None
    if not match:
        raise IntervalError(
            "must be a positive whole number and a unit, e.g. '15 minutes', '1 hour', '1d', "
            "'1mo'"
        )
    count, unit = int(match.group(1)), match.group(2)
    if unit not in _UNITS:
        raise IntervalError(
            f"unknown unit '{unit}'; use microseconds, milliseconds, seconds, minutes, hours, "
            "days, weeks, months or years (or us, ms, s, m, h, d, w, mo, y)"
        )
    if count <= 0:
        raise IntervalError("must be greater than zero")
    months, seconds = _UNITS[unit]
    interval = BucketInterval(
        months=count * months,
        micros=0 if months else count * (_MICROS.get(unit) or seconds * 1_000_000),
    )
    if interval.approx_seconds() > MAX_YEARS * 365.25 * 86400:
        raise IntervalError(f"must be at most {MAX_YEARS} years")
    return interval
