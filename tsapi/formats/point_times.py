"""A point's time, from any spelling a client may send: ISO-8601 strings and Unix seconds,
read into aware UTC datetimes, or an error message saying why not."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

_SUBMICRO = re.compile(r"[.,]\d{6}(\d+)")


class TimeParser:
    """Parses ISO-8601 strings and Unix seconds; memoized, as batches repeat their times."""

    def __init__(self) -> None:
        self._memo: dict[Any, datetime | str] = {}

    def __call__(self, raw: Any) -> datetime | str:
        """Return an aware UTC datetime, or an error message."""
        # Only strings are memoized: True == 1 as a dict key, and numbers parse fast anyway.
        if raw.__class__ is not str:
            return read_time(raw)
        result = self._memo.get(raw)
        if result is None:
            result = self._memo[raw] = utc_z_form(raw) or read_time(raw)
        return result


def read_time(raw: Any) -> datetime | str:
    """Any time a point may carry, as an aware UTC datetime, or an error message."""
    if isinstance(raw, bool) or raw is None:
        return "must be an ISO-8601 date-time string or Unix seconds"
    if isinstance(raw, int | float):
        # Only floats can be non-finite; math.isfinite of a 400-digit int would overflow.
        if isinstance(raw, float) and not math.isfinite(raw):
            return "must be a finite number of Unix seconds"
        try:
            return datetime.fromtimestamp(raw, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return "is out of the supported range (years 1 to 9999)"
    if not isinstance(raw, str):
        return "must be an ISO-8601 date-time string or Unix seconds"
    too_fine = submicro_error(raw)
    if too_fine:
        return too_fine
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return f"'{raw[:64]}' is not a valid ISO-8601 date-time"
    if parsed.tzinfo is None:  # times without an offset are UTC
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        return "is out of the supported range (years 1 to 9999)"


def utc_z_form(raw: str) -> datetime | None:
    """The usual spelling, `YYYY-MM-DDTHH:MM:SS.ffffffZ`, read without the general checks:
    exactly six fractional digits cannot lose precision, and Z is UTC already. None for
    any other spelling, which read_time reads (tests/test_validation_fast_path.py holds them
    equal)."""
    if (len(raw) != 27 or raw[26] != "Z" or raw[19] != "." or raw[10] != "T"
            or raw[4] != "-" or raw[7] != "-" or raw[13] != ":" or raw[16] != ":"):
        return None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is UTC else None


def submicro_error(raw: str) -> str | None:
    """Why a time string cannot be kept exactly: digits past the microsecond that are not 0
    would be cut off silently by the parsers (a query range would then be another range)."""
    extra = _SUBMICRO.search(raw)
    if extra and extra.group(1).strip("0"):
        return "has more than microsecond precision; at most 6 fractional digits are stored"
    return None
