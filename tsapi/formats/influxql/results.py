"""Shaping answers as InfluxDB 1.x does: time stamps, bucket grids, fill, column names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tsapi.formats.influxql import ast
from tsapi.formats.influxql.tokens import InfluxQLError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_UNITS = {"ns": 1, "n": 1, "u": 1_000, "µ": 1_000, "us": 1_000, "ms": 1_000_000,
               "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}


def to_ns(moment: datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def from_ns(ns: int) -> datetime:
    return EPOCH + timedelta(microseconds=ns // 1_000)


def render_time(ns: int, epoch: str | None, zone: ZoneInfo | None):
    """An epoch integer in the requested unit, or RFC 3339 with trailing zeros trimmed."""
    if epoch:
        if EPOCH_UNITS[epoch] == 1 and not -(2**63) <= ns < 2**63:
            # tsapi keeps years 1 to 9999; nanoseconds in 64 bits reach 1677 to 2262 (a
            # bucket grid may start before its range), and JSON readers expect an int64.
            raise InfluxQLError(f"time {render_time(ns, None, None)} is outside the range "
                                f"of epoch={epoch} (years 1677 to 2262): use epoch=u")
        return int(ns / EPOCH_UNITS[epoch]) if ns < 0 else ns // EPOCH_UNITS[epoch]
    moment = from_ns(ns)
    if zone is not None:
        moment = moment.astimezone(zone)
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{ns % 1_000_000_000:09d}".rstrip("0")
    if fraction:
        base += "." + fraction
    if zone is None:
        return base + "Z"
    offset = moment.strftime("%z")
    # To the minute, as InfluxDB (Go) writes RFC 3339: local mean times before standard zones
    # have offsets in seconds (Berlin: +005328), which RFC 3339 cannot say.
    return base + ("Z" if offset == "+0000" else f"{offset[:3]}:{offset[3:5]}")


def bucket_start(ns: int, interval: int, offset: int, zone: ZoneInfo | None) -> int:
    """The start of the GROUP BY time() bucket holding `ns` (local wall time with tz())."""
    if zone is None:
        return (ns - offset) // interval * interval + offset
    wall = ns + _utc_offset_ns(ns, zone)
    return _wall_to_utc((wall - offset) // interval * interval + offset, zone)


def bucket_grid(start: int, end: int, interval: int, offset: int,
                zone: ZoneInfo | None) -> list[int]:
    """Every bucket start from the bucket of `start` to the bucket of `end` (inclusive).

    With tz() buckets step through local wall time, so a day bucket runs from local
    midnight to local midnight (23 or 25 hours across a DST change)."""
    if zone is None:
        first = bucket_start(start, interval, offset, None)
        return list(range(first, end + 1, interval))
    wall = start + _utc_offset_ns(start, zone)
    wall = (wall - offset) // interval * interval + offset
    grid: list[int] = []
    while True:
        t = _wall_to_utc(wall, zone)
        if t > end:
            return grid
        if not grid or t > grid[-1]:
            grid.append(t)
        wall += interval


def _utc_offset_ns(ns: int, zone: ZoneInfo | None) -> int:
    if zone is None:
        return 0
    offset = from_ns(ns).astimezone(zone).utcoffset() or timedelta(0)
    return int(offset.total_seconds()) * 1_000_000_000


def _wall_to_utc(wall_ns: int, zone: ZoneInfo) -> int:
    """The instant a local wall time names (the earlier one when it is ambiguous)."""
    naive = from_ns(wall_ns).replace(tzinfo=None)
    offset = naive.replace(tzinfo=zone).utcoffset() or timedelta(0)
    return wall_ns - int(offset.total_seconds()) * 1_000_000_000


class _Empty:
    """A bucket no point fell in: what fill() fills. A bucket whose aggregate is null (the
    stddev of a lone point) is not one: InfluxDB keeps its null, carries it on with
    fill(previous), interpolates nothing from it, and lists it under fill(none)."""

    def __repr__(self) -> str:
        return "EMPTY"


EMPTY = _Empty()


def fill_column(times: list[int], values: list, fill: ast.Fill) -> list:
    """Fill the EMPTY buckets of one column of a bucket series as InfluxDB's fill() does;
    every bucket left unfilled (and every null aggregate) is None."""
    if fill.mode in ("null", "none"):
        return [None if v is EMPTY else v for v in values]
    if fill.mode == "value":
        return [fill.value if v is EMPTY else v for v in values]
    out = list(values)
    if fill.mode == "previous":
        last = None
        for i, v in enumerate(out):
            if v is EMPTY:
                out[i] = last
            else:
                last = v
        return out
    # linear: between the buckets with points on either side, when both have a number.
    present = [i for i, v in enumerate(values) if v is not EMPTY]
    for i, v in enumerate(out):
        if v is EMPTY:
            out[i] = None
    for a, b in zip(present, present[1:], strict=False):
        low, high = values[a], values[b]
        if b == a + 1 or not isinstance(low, int | float) or not isinstance(high, int | float) \
                or isinstance(low, bool) or isinstance(high, bool):
            continue
        span = times[b] - times[a]
        for i in range(a + 1, b):
            value = low + (high - low) * (times[i] - times[a]) / span
            # Integers (counts) stay integers, cut toward zero as InfluxDB's int64() cuts.
            out[i] = int(value) if isinstance(low, int) and isinstance(high, int) else value
    return out


def column_names(names: list[str], aliased: list[bool]) -> list[str]:
    """Column names made unique as InfluxDB does: aliases are kept as written, and a repeated
    default name gets the first free suffix (`max`, `max_1`, `max_2`)."""
    taken = {name for name, alias in zip(names, aliased, strict=True) if alias}
    suffixes: dict[str, int] = {}
    out = []
    for name, alias in zip(names, aliased, strict=True):
        if alias:
            out.append(name)
            continue
        unique, n = name, suffixes.get(name, 0)
        if name in suffixes or name in taken:
            n = max(n, 1)
            while f"{name}_{n}" in taken:
                n += 1
            unique = f"{name}_{n}"
        suffixes[name] = n + 1
        taken.add(unique)
        out.append(unique)
    return out


def check_timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        raise InfluxQLError(f"unable to find time zone {name[:64]}") from None
