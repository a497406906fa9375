"""The Environmental Sensor Telemetry CSV shape and its mapping to tsapi points."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, NamedTuple

# The original CSV quotes its header but not (necessarily) its values; keep it byte-exact.
HEADER_LINE = '"ts","device","co","humidity","light","lpg","motion","smoke","temp"'
COLUMNS = ("ts", "device", "co", "humidity", "light", "lpg", "motion", "smoke", "temp")


# CSV column -> tsapi metric name, in the order points are emitted for a row.
METRIC_COLUMNS = (
    ("carbon_monoxide", "co"),
    ("humidity", "humidity"),
    ("liquefied_petroleum_gas", "lpg"),
    ("smoke", "smoke"),
    ("temperature", "temp"),
    ("light_status", "light"),
    ("motion_detected", "motion"),
)
# Index-based so plain tuples in COLUMNS order work as well as Reading.
_METRIC_INDEX = tuple((metric, COLUMNS.index(column)) for metric, column in METRIC_COLUMNS)


class Reading(NamedTuple):
    ts: float
    device: str
    co: float | None
    humidity: float | None
    light: bool | None
    lpg: float | None
    motion: bool | None
    smoke: float | None
    temp: float | None


def _parse_float(s: str) -> float | None:
    return float(s) if s else None


def _parse_bool(s: str) -> bool | None:
    s = s.strip().lower()
    if not s:
        return None
    if s in ("true", "1", "1.0", "t", "yes"):
        return True
    if s in ("false", "0", "0.0", "f", "no"):
        return False
    raise ValueError(f"not a boolean: {s!r}")


def parse_row(fields: list[str]) -> Reading:
    """Parse one CSV record (fields in COLUMNS order); empty fields become None."""
    if len(fields) != len(COLUMNS):
        raise ValueError(f"expected {len(COLUMNS)} fields, got {len(fields)}")
    ts, device, co, hum, light, lpg, motion, smoke, temp = (f.strip() for f in fields)
    # float() also takes the "1.5945120943859746E9" spelling some exports of this data use.
    return Reading(
        float(ts),
        device,
        _parse_float(co),
        _parse_float(hum),
        _parse_bool(light),
        _parse_float(lpg),
        _parse_bool(motion),
        _parse_float(smoke),
        _parse_float(temp),
    )


def read_csv(f: IO[str], max_rows: int | None = None) -> Iterator[Reading]:
    """Yield readings from an open CSV file; the header must name COLUMNS in order."""
    reader = csv.reader(f)
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != COLUMNS:
        raise ValueError(f"unexpected CSV header: {header!r}, expected {COLUMNS!r}")
    for i, fields in enumerate(reader):
        if max_rows is not None and i >= max_rows:
            return
        if not fields:  # tolerate blank lines, e.g. a trailing one
            continue
        try:
            yield parse_row(fields)
        except ValueError as exc:
            raise ValueError(f"CSV line {reader.line_num}: {exc}") from None


def format_time(ts: float) -> str:
    """Unix seconds -> ISO-8601 UTC, always with microseconds (rounded half-even) and +00:00."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds")


def row_to_points(row: Reading) -> list[dict]:
    """The tsapi points for one reading: up to 7 (missing values are skipped)."""
    time = format_time(row[0])
    device = row[1]
    points = []
    for metric, index in _METRIC_INDEX:
        value = row[index]
        if value is None:
            continue
        # Booleans become 1.0/0.0 because tsapi stores numeric values.
        points.append(
            {"time": time, "metric": metric, "value": float(value), "tags": {"device": device}}
        )
    return points
