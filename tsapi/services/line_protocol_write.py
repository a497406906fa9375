"""InfluxDB writes: line protocol mapped to tsapi points and stored through the ingest path.

Each field becomes the metric `<measurement>.<field>` (the bare field name for the default
measurement); tags stay tags; booleans are stored as 1.0/0.0; timestamps are rounded down to
the microsecond, the resolution tsapi stores.
"""

from __future__ import annotations

import codecs
import itertools
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from tsapi.errors import BadRequest, InvalidInput, PayloadTooLarge
from tsapi.formats.line_protocol import Line, LineError, LineReader, scan
from tsapi.formats.validation import (
    CHECKED,
    MAX_TAGS,
    PointBatch,
    check_metric_name,
    check_tag,
    check_tag_set,
    check_value,
)
from tsapi.services.ingest import naming_lines, store_batch
from tsapi.services.runtime import Runtime

# (multiply, then floor-divide) to microseconds; v1 and v2 spellings are both accepted.
PRECISIONS: dict[str, tuple[int, int]] = {
    "ns": (1, 1000), "n": (1, 1000), "us": (1, 1), "u": (1, 1), "ms": (1000, 1),
    "s": (1_000_000, 1), "m": (60_000_000, 1), "h": (3_600_000_000, 1),
}
MAX_REPORTED_LINES = 100
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def write_line_protocol(rt: Runtime, body: Iterable[bytes], precision: str,
                        bucket: str | None, accept_partial: bool) -> int:
    """Store the points of a line-protocol body (its decompressed chunks, which the reader
    has already capped in size); returns how many were stored.

    All or nothing unless accept_partial: then the good lines are stored and the bad ones
    reported in the error raised afterwards. Parsing stops at the first point (or bad line)
    over the batch limit, as the body arrives.
    """
    naming = rt.line_protocol
    extra = ((naming.bucket_tag, bucket),) if naming.bucket_tag and bucket else ()
    limit = rt.limits.max_batch_points
    errors: list[LineError] = []
    converter = _Converter(PRECISIONS[precision], naming.default_measurement, extra)
    batch, numbers = converter.batch(LineReader(errors, limit).lines(_text_pieces(body)),
                                     errors, limit)
    if errors and not accept_partial:
        raise _bad_lines(errors, "nothing was stored")
    try:
        result = store_batch(rt, batch)
    except InvalidInput as exc:
        raise naming_lines(exc, numbers) from None
    stored = result.points if result else 0
    if errors:
        raise _bad_lines(errors, f"the other {stored} point(s) were stored")
    return stored


def _text_pieces(body: Iterable[bytes]) -> Iterator[str]:
    """The body's chunks as text, decoded as they come.

    A byte that is not UTF-8 makes its line a bad line, as InfluxDB clients expect of any
    malformed line (named in `errors`; with accept_partial the others are stored), not the
    whole body: it is read as a lone surrogate (surrogateescape), which every check of a name,
    tag or string value refuses and no number or timestamp holds, and which _bad_lines then
    reports as what it was. A body of UTF-8 pays nothing for this.

    A byte order mark opening the body (Windows editors save one) is dropped, as for CSV:
    InfluxDB 1.6 keeps it as the first character of the first measurement's name."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    opening = True  # nothing decoded yet: a U+FEFF here is the mark
    for chunk, final in itertools.chain(((c, False) for c in body), ((b"", True),)):
        try:
            text = decoder.decode(chunk, final=final)
        except UnicodeDecodeError:
            # The decoder keeps its state when it raises: the chunk is decoded again.
            decoder.errors = "surrogateescape"
            text = decoder.decode(chunk, final=final)
        if opening and text:
            opening = False
            text = text.removeprefix("\ufeff")
        if text:
            yield text


_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def _readable(error: LineError) -> LineError:
    """The error as a client can read it: a line holding a byte that is not UTF-8 is named
    for that, and the byte shown as U+FFFD (no JSON can carry it)."""
    if not _ESCAPED_BYTE.search(error.text) and not _ESCAPED_BYTE.search(error.reason):
        return error
    return LineError(error.number, "is not valid UTF-8",
                     error.text.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))


def line_protocol_batch(text: str, precision: str, default_measurement: str = "tsapi",
                        extra_tags: tuple[tuple[str, str], ...] = (),
                        max_points: int | None = None
                        ) -> tuple[PointBatch, list[int], list[LineError]]:
    """The checked points of every good line, each point's line number, and the bad lines;
    PayloadTooLarge as soon as points and bad lines together pass max_points."""
    errors: list[LineError] = []
    converter = _Converter(PRECISIONS[precision], default_measurement, extra_tags)
    batch, numbers = converter.batch(scan(text, errors, max_points), errors, max_points)
    return batch, numbers, errors


def _bad_lines(errors: list[LineError], outcome: str) -> BadRequest:
    errors = sorted(map(_readable, errors), key=lambda e: e.number)
    listed = [{"field": f"line {e.number}", "message": e.reason, "line": e.number}
              for e in errors[:MAX_REPORTED_LINES]]
    detail = f"{len(errors)} bad line(s); {outcome}. First: {errors[0]}"
    return BadRequest(detail, errors=listed)


class _Converter:
    """Turns parsed lines into a column-wise batch, checking each distinct name once."""

    def __init__(self, scale: tuple[int, int], default_measurement: str,
                 extra: tuple[tuple[str, str], ...]):
        self.multiply, self.divide = scale
        self.default_measurement = default_measurement
        self.extra = extra
        self.now = datetime.now(UTC)  # one time for every line without a timestamp
        self.metrics: dict[str, dict[str, str]] = {}
        self.tag_sets: dict[tuple, tuple[tuple[str, str], ...]] = {}

    def batch(self, lines: Iterable[Line], errors: list[LineError],
              max_points: int | None = None) -> tuple[PointBatch, list[int]]:
        """The batch of every good line's points, and each point's line number."""
        batch = PointBatch()
        numbers: list[int] = []
        times, metrics, values, tags_col = batch.times, batch.metrics, batch.values, batch.tags
        for line in lines:
            try:
                time = self.time(line.timestamp)
                tags = self.tags(line.tags)
                names = self.field_names(line.measurement)
                # A line's points are taken together or not at all (a bad field: a bad line).
                line_metrics, line_values = [], []
                for key, value in line.fields:
                    line_metrics.append(names.get(key) or self.metric(line.measurement, key))
                    line_values.append(value if value.__class__ is float
                                       else self.value(key, value))
            except ValueError as exc:
                errors.append(LineError(line.number, str(exc), line.text))
                continue
            count = len(line_metrics)
            metrics += line_metrics
            values += line_values
            times += [time] * count
            tags_col += [tags] * count
            numbers += [line.number] * count
            if max_points is not None and len(times) + len(errors) > max_points:
                raise PayloadTooLarge(f"Body has more than {max_points} points (or bad lines); "
                                      f"the limit is {max_points} per request")
        return batch, numbers

    def time(self, timestamp: int | None) -> datetime:
        if timestamp is None:
            return self.now
        micros = timestamp * self.multiply // self.divide  # rounds down, also before 1970
        try:
            return _EPOCH + timedelta(microseconds=micros)
        except OverflowError:
            raise ValueError(f"timestamp {timestamp} is out of range (years 1 to 9999)") from None

    def field_names(self, measurement: str) -> dict[str, str]:
        """The metric name of each of the measurement's fields seen so far."""
        names = self.metrics.get(measurement)
        if names is None:
            names = self.metrics[measurement] = {}
        return names

    def metric(self, measurement: str, key: str) -> str:
        name = key if measurement == self.default_measurement else f"{measurement}.{key}"
        if name not in CHECKED.metrics:  # found valid by an earlier request, or checked now
            problem = check_metric_name(name)
            if problem:
                raise ValueError(f"metric name '{name[:64]}' {problem}")
            CHECKED.add_metric(name)
        self.metrics[measurement][key] = name
        return name

    def tags(self, raw: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        known = self.tag_sets.get(raw)
        if known is None:
            merged = dict(self.extra)
            merged.update(raw)  # a line's own tag wins over the bucket tag
            if len(merged) > MAX_TAGS:
                raise ValueError(f"more than {MAX_TAGS} tags")
            for key, value in merged.items():
                problem = check_tag(key, value)
                if problem:
                    raise ValueError(f"tag '{key[:64]}': {problem}")
            problem = check_tag_set(merged)
            if problem:
                raise ValueError(f"the tag set {problem}")
            known = self.tag_sets[raw] = tuple(sorted(merged.items()))
        return known

    @staticmethod
    def value(key: str, value: Any) -> float | str:
        if value.__class__ is float:
            return value  # the parser admits only finite floats
        if value is True or value is False:
            return 1.0 if value else 0.0
        problem = check_value(value)
        if problem:
            raise ValueError(f"field '{key}' {problem}")
        return float(value) if isinstance(value, int) else value
