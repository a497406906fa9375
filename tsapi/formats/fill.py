"""Gap filling: one row per bucket over the whole range, for every group."""

from __future__ import annotations

from datetime import datetime
from itertools import groupby
from typing import Any

FILL_MODES = ("none", "null", "zero", "previous", "linear")
# Modes that carry a known value on, seeded from the last point before the range.
SEEDED = frozenset({"previous", "linear"})
# Modes that make up numbers: they cannot fill a column of strings.
NEEDS_NUMBERS = frozenset({"zero", "linear"})


def fill_rows(
    rows: list[tuple],
    buckets: list[datetime],
    mode: str,
    seeds: dict[tuple, tuple[datetime, Any]],
) -> list[tuple]:
    """rows: (bucket, *group values, value), sorted by groups then bucket.

    Returns the same shape with every bucket present for each group seen in rows or seeds.
    `previous` carries the last known value forward (seeded by the last point before the
    range), a null aggregate too; `linear` interpolates in time between known values (the
    seed counts as one) when neither is null; buckets after the last known value stay null
    for `linear`, as nothing follows them.
    """
    by_group: dict[tuple, dict[datetime, Any]] = {}
    for group, members in groupby(rows, key=lambda r: tuple(r[1:-1])):
        by_group[group] = {r[0]: r[-1] for r in members}
    if mode in SEEDED:
        for group in seeds:
            by_group.setdefault(group, {})
    out: list[tuple] = []
    for group in sorted(by_group, key=lambda g: tuple((v is not None, v) for v in g)):
        known = by_group[group]
        values = _fill_one(buckets, known, mode, seeds.get(group))
        out.extend((b, *group, v) for b, v in zip(buckets, values, strict=True))
    return out


def _fill_one(buckets, known, mode, seed) -> list:
    if mode in ("null", "zero"):
        missing = 0 if mode == "zero" else None
        return [known.get(b, missing) for b in buckets]
    if mode == "previous":
        current = seed[1] if seed else None
        values = []
        for b in buckets:
            if b in known:
                current = known[b]
            values.append(current)
        return values
    # linear: interpolate between the neighbouring known points (bucket start, value). A
    # bucket whose aggregate is null (the stddev or rate of a lone point) keeps its null and
    # is a neighbour with no value: the empty buckets beside it stay null, as InfluxDB 1.6
    # fills them (and as `previous` carries that null on).
    anchors = ([seed] if seed else []) + [(b, known[b]) for b in buckets if b in known]
    values = []
    j = 0
    for b in buckets:
        if b in known:
            values.append(known[b])
            continue
        while j + 1 < len(anchors) and anchors[j + 1][0] < b:
            j += 1
        if anchors and anchors[j][0] < b and j + 1 < len(anchors) and \
                anchors[j][1] is not None and anchors[j + 1][1] is not None:
            (t0, v0), (t1, v1) = anchors[j], anchors[j + 1]
            share = (b - t0).total_seconds() / (t1 - t0).total_seconds()
            values.append(v0 + (v1 - v0) * share)
        else:
            values.append(None)
    return values
