"""Synthetic Environmental Sensor Telemetry: a deterministic generator of the original's shape.

The CSV shape and the row -> points mapping live in tsapi.formats.telemetry (the server's
`tsapi load-sample` uses them too) and are re-exported here for the tools.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO

from tsapi.formats.telemetry import (  # noqa: F401  (re-exported for the tools and their tests)
    COLUMNS,
    HEADER_LINE,
    METRIC_COLUMNS,
    Reading,
    format_time,
    parse_row,
    read_csv,
    row_to_points,
)

FULL_ROWS = 405_184
DEFAULT_SEED = 20200712
DEFAULT_START = datetime(2020, 7, 12, 0, 1, 34, tzinfo=UTC)
DEFAULT_DAYS = 8.0


@dataclass(frozen=True)
class Device:
    mac: str
    weight: int  # row count in the original data set; fixes each device's reporting rate
    temp_mean: float
    temp_daily: float  # amplitude of the daily temperature cycle
    temp_sd: float  # slow weather/HVAC drift around the cycle
    hum_mean: float
    hum_sd: float
    gas_mean: float  # latent gas-sensor level, 0 = typical room air
    light: str  # "day": lit in daytime; "dark": lit only during a few short visits
    motion_p: float  # chance per reading that motion starts
    glitch_p: float  # chance per reading of a failed DHT read (temp 0.0, humidity ~1-5)


DEVICES = (
    Device("b8:27:eb:bf:9d:51", 187_451, 22.3, 0.6, 0.25, 50.8, 1.2, 0.0, "day", 8e-4, 0.0),
    Device("00:0f:00:70:91:0a", 111_815, 19.4, 0.4, 0.30, 75.5, 1.5, 0.35, "dark", 3e-4, 0.0),
    Device("1c:bf:ce:15:ec:4d", 105_918, 26.0, 2.4, 1.30, 61.0, 8.0, -0.7, "day", 2e-3, 2e-4),
)

# One MQ-2 style gas sensor drives all three gases: each is log-linear in the same latent
# level, so co/lpg/smoke move together as in the original. (value at level 0, slope)
_GAS = {"co": (0.0050, 1.0), "lpg": (0.0060, 0.5), "smoke": (0.0170, 0.9)}
_GAS_RANGE = (-1.3, 1.1)  # keeps co ~0.0014-0.015, lpg ~0.003-0.010, smoke ~0.005-0.046
_LOCAL_OFFSET = -4 * 3600  # the sensors sat in a UTC-4 summer time zone; drives day/night
_DAY = 86_400.0


def device_counts(rows: int) -> list[int]:
    """Split `rows` across DEVICES in proportion to their weights, summing exactly to rows."""
    total = sum(d.weight for d in DEVICES)
    exact = [rows * d.weight / total for d in DEVICES]
    counts = [math.floor(x) for x in exact]
    # Largest remainder, ties broken by device order, so the split is stable.
    order = sorted(range(len(DEVICES)), key=lambda i: (counts[i] - exact[i], i))
    for i in order[: rows - sum(counts)]:
        counts[i] += 1
    return counts


def _to_unix(start: datetime | float) -> float:
    if isinstance(start, datetime):
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        return start.timestamp()
    return float(start)


def generate_rows(
    rows: int = FULL_ROWS,
    seed: int = DEFAULT_SEED,
    start: datetime | float = DEFAULT_START,
    days: float = DEFAULT_DAYS,
) -> Iterator[Reading]:
    """Yield `rows` synthetic readings from the three devices, sorted by ts, in [start, +days)."""
    if rows < 0 or days <= 0:
        raise ValueError("rows must be >= 0 and days > 0")
    t0 = _to_unix(start)
    span = days * _DAY
    streams = [
        _device_stream(dev, n, t0, span, random.Random(f"{seed}/{dev.mac}"))
        for dev, n in zip(DEVICES, device_counts(rows), strict=True)
    ]
    # Tuples order by ts first; equal ts (practically never) falls back to the device name.
    return heapq.merge(*streams)


def _light_schedule(dev: Device, rng: random.Random, n_days: int) -> list[list[tuple]]:
    """Per local day, the (on, off) second-of-day windows when the light sensor sees light."""
    days = []
    for _ in range(n_days):
        if dev.light == "day":
            days.append([(rng.gauss(6.5, 0.6) * 3600, rng.gauss(21.0, 0.8) * 3600)])
            continue
        # A mostly dark room: one to three short visits a day with the lamp on.
        visits = []
        for _ in range(rng.randint(1, 3)):
            on = rng.uniform(7.0, 23.0) * 3600
            visits.append((on, on + rng.uniform(5, 40) * 60))
        days.append(visits)
    return days


def _device_stream(
    dev: Device, n: int, t0: float, span: float, rng: random.Random
) -> Iterator[Reading]:
    if n == 0:
        return
    cell = span / n
    first_day = math.floor((t0 + _LOCAL_OFFSET) / _DAY)
    last_day = math.floor((t0 + span + _LOCAL_OFFSET) / _DAY)
    lights = _light_schedule(dev, rng, last_day - first_day + 1)
    gauss, uniform, rand = rng.gauss, rng.uniform, rng.random
    exp, cos, sqrt = math.exp, math.cos, math.sqrt
    co0, co_k = _GAS["co"]
    lpg0, lpg_k = _GAS["lpg"]
    smoke0, smoke_k = _GAS["smoke"]
    gas_lo, gas_hi = _GAS_RANGE

    # Ornstein-Uhlenbeck states (exact update for irregular dt), started at equilibrium.
    temp_x = gauss(0.0, dev.temp_sd)
    hum_x = gauss(0.0, dev.hum_sd)
    gas_x = gauss(0.0, 0.15)
    spike = 0.0  # decaying gas excursion (cooking, smoke) added on top of the slow level
    motion_left = 0
    prev = t0
    for k in range(n):
        # One report per cell at a random offset in its middle half: irregular intervals
        # (0.5-1.5 cells) that never collide, strictly inside [t0, t0 + span).
        ts = t0 + (k + 0.25 + 0.5 * rand()) * cell
        dt = ts - prev
        prev = ts

        decay = exp(-dt / 1800.0)  # temperature/humidity drift on a ~30 min scale
        noise = sqrt(1.0 - decay * decay)
        temp_x = temp_x * decay + dev.temp_sd * noise * gauss(0.0, 1.0)
        hum_x = hum_x * decay + dev.hum_sd * noise * gauss(0.0, 1.0)
        gas_decay = exp(-dt / 7200.0)
        gas_x = gas_x * gas_decay + 0.15 * sqrt(1.0 - gas_decay * gas_decay) * gauss(0.0, 1.0)
        spike *= exp(-dt / 600.0)
        if rand() < dt / 86_400.0:  # about one gas event per day
            spike += uniform(0.4, 1.0)

        local = ts + _LOCAL_OFFSET
        day = math.floor(local / _DAY)
        sec = local - day * _DAY
        light = any(on <= sec < off for on, off in lights[day - first_day])

        # Warmest mid-afternoon; relative humidity falls as the air warms.
        cycle = dev.temp_daily * cos((sec / 3600.0 - 16.0) * (math.pi / 12.0))
        temp = dev.temp_mean + cycle + temp_x + gauss(0.0, 0.05)
        hum = dev.hum_mean + hum_x - 1.5 * (cycle + temp_x) + gauss(0.0, 0.2)
        if rand() < dev.glitch_p:
            temp, hum = 0.0, uniform(1.0, 5.0)
        temp = round(temp, 1)  # DHT sensors report tenths
        hum = round(min(max(hum, 1.0), 100.0), 1)

        level = min(max(dev.gas_mean + gas_x + spike + gauss(0.0, 0.02), gas_lo), gas_hi)

        if motion_left:
            motion_left -= 1
        # Motion needs someone in the room, which is much likelier with the light on.
        elif rand() < (dev.motion_p if light else dev.motion_p * 0.2):
            motion_left = rng.randint(1, 3)
        yield Reading(
            ts,
            dev.mac,
            co0 * exp(co_k * level),
            hum,
            light,
            lpg0 * exp(lpg_k * level),
            motion_left > 0,
            smoke0 * exp(smoke_k * level),
            temp,
        )


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def format_row(r: Reading) -> str:
    """One CSV line (no newline); floats use repr so they round-trip exactly."""
    return ",".join(_fmt(v) for v in r)


def write_csv(rows: Iterable[Reading], out: IO[str], chunk: int = 8192) -> int:
    """Write the header and rows to `out`; returns the number of rows written."""
    out.write(HEADER_LINE + "\n")
    count = 0
    buf: list[str] = []
    for r in rows:
        buf.append(format_row(r))
        if len(buf) >= chunk:
            out.write("\n".join(buf) + "\n")
            count += len(buf)
            buf.clear()
    if buf:
        out.write("\n".join(buf) + "\n")
        count += len(buf)
    return count
