"""The fast ingest validator: checks a parsed batch point by point without marshmallow.

Per-point marshmallow costs ~30 µs a point; this does the same checks in a few, and reports
errors in the same field-level shape as the schemas (see errors.flatten_messages).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tsapi.errors import InvalidInput, field_error
from tsapi.formats.names import name_problem, text_problem
from tsapi.formats.point_times import TimeParser

MAX_METRIC_NAME = 255
MAX_TAGS = 32
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 1024
# A series' tags are one entry of a btree index (series: metric id, tags), which holds at most
# 2,704 bytes: a tag set that does not compress failed there (a 500) from 2,680 bytes of keys
# and values less 8 a tag, within the limits above. 2,048 fits with any number of tags.
MAX_TAG_SET_BYTES = 2048
MAX_STRING_VALUE = 65_536
MAX_REPORTED_ERRORS = 1000
# Doubles hold every integer up to 2**53 exactly; larger ones would be silently rounded.
MAX_EXACT_INT = 2**53
WIDE_INT = float(2**63)

@dataclass
class PointBatch:
    """A validated batch, column-wise: times are aware UTC datetimes, tags sorted tuples."""

    times: list[datetime] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    values: list[float | str] = field(default_factory=list)
    tags: list[tuple[tuple[str, str], ...]] = field(default_factory=list)
    # orjson reads integers wider than 64 bits as floats; such a float may have been one.
    maybe_wide_integer: bool = False

    def __len__(self) -> int:
        return len(self.times)


def check_value(value: Any) -> str | None:
    """Why a point's value cannot be stored, or None when it can."""
    if isinstance(value, bool):
        return "must be a number or a string, not a boolean"
    if isinstance(value, float):
        return None if math.isfinite(value) else "must be a finite number"
    if isinstance(value, int):
        if -MAX_EXACT_INT <= value <= MAX_EXACT_INT:
            return None
        return "is an integer too large to store exactly (the limit is 2**53)"
    if isinstance(value, str):
        if len(value) > MAX_STRING_VALUE:
            return f"is longer than {MAX_STRING_VALUE} characters"
        return text_problem(value)
    if value is None:
        return "is required"
    return "must be a number or a string"


def check_metric_name(name: Any) -> str | None:
    if not isinstance(name, str):
        return "must be a string"
    if not name or name.strip() != name:
        return "must be non-empty, without leading or trailing spaces"
    if len(name) > MAX_METRIC_NAME:
        return f"is longer than {MAX_METRIC_NAME} characters"
    return name_problem(name)


_BAD_TAG_KEY = f"tag keys must be 1 to {MAX_TAG_KEY} characters without control characters"
_BAD_TAG_VALUE = (f"tag values must be at most {MAX_TAG_VALUE} characters without control "
                  "characters")


def check_tag(key: str, value: Any) -> str | None:
    """Why a tag cannot be stored, or None when it can."""
    if not key or len(key) > MAX_TAG_KEY or name_problem(key):
        return _BAD_TAG_KEY
    if not isinstance(value, str):
        return "tag values must be strings"
    if len(value) > MAX_TAG_VALUE or name_problem(value):
        return _BAD_TAG_VALUE
    return None


def check_tag_set(tags: dict[str, str]) -> str | None:
    """Why a tag set of valid tags cannot be stored (too large to index), or None."""
    chars = sum(len(key) + len(value) for key, value in tags.items())
    if chars * 4 <= MAX_TAG_SET_BYTES:  # fits whatever the characters (UTF-8: 4 bytes at most)
        return None
    size = sum(len(key.encode()) + len(value.encode()) for key, value in tags.items())
    if size > MAX_TAG_SET_BYTES:
        return f"holds {size} bytes of keys and values (UTF-8); the limit is {MAX_TAG_SET_BYTES}"
    return None


def _check_tags(tags: Any, where: str, errors: list[dict[str, Any]], index: int):
    if not isinstance(tags, dict):
        errors.append(field_error(where, "must be an object of string keys to string values",
                                  index=index))
        return None
    if len(tags) > MAX_TAGS:
        errors.append(field_error(where, f"has more than {MAX_TAGS} tags", index=index))
        return None
    for key, value in tags.items():
        problem = check_tag(key, value)
        if problem:
            suffix = key[:64] if problem is _BAD_TAG_KEY else key
            errors.append(field_error(f"{where}.{suffix}", problem, index=index))
            return None
    problem = check_tag_set(tags)
    if problem:
        errors.append(field_error(where, problem, index=index))
        return None
    return tuple(sorted(tags.items()))


class _CheckedNames:
    """Metric names and tag sets found valid, remembered across batches (a fleet sends the
    same few again and again): a hit skips their checks and the sorting of tags.

    Only valid ones are kept, and only short ones: at most MAX_ENTRIES of at most
    MAX_CHARS characters each, so the memory stays bounded (cleared when full: a miss
    only costs the checks). Keys are exact strings, or tuples of (str, str) items, which
    no other key equals (a tag value that is not a string is never stored).
    """

    MAX_ENTRIES = 4096
    MAX_CHARS = 256

    def __init__(self) -> None:
        self.metrics: dict[str, None] = {}
        self.tag_sets: dict[tuple, tuple[tuple[str, str], ...]] = {}

    def add_metric(self, name: str) -> None:
        if len(name) <= self.MAX_CHARS:
            if len(self.metrics) >= self.MAX_ENTRIES:
                self.metrics.clear()
            self.metrics[name] = None

    def add_tags(self, items: tuple, canonical: tuple[tuple[str, str], ...]) -> None:
        if sum(len(k) + len(v) for k, v in canonical) <= self.MAX_CHARS:
            if len(self.tag_sets) >= self.MAX_ENTRIES:
                self.tag_sets.clear()
            self.tag_sets[items] = canonical


CHECKED = _CheckedNames()


def validate_points(data: Any, *, field_name: str = "data") -> PointBatch:
    """Validate a list of point objects; raise InvalidInput naming every bad point and field."""
    if not isinstance(data, list):
        raise InvalidInput(
            f"{field_name} must be a list of points",
            errors=[field_error(field_name, "must be a list of points")],
        )
    batch = PointBatch()
    errors: list[dict[str, Any]] = []
    parse_time = TimeParser()
    metric_ok, tags_ok = CHECKED.metrics, CHECKED.tag_sets
    times, metrics, values, tag_keys = batch.times, batch.metrics, batch.values, batch.tags
    for i, point in enumerate(data):
        # The usual point passes in a few steps: a valid time, a metric name and a tag set
        # already found valid (in this batch or an earlier one), a number within range.
        # Anything else takes the full checks, which name every error.
        if point.__class__ is not dict:
            if not isinstance(point, dict):
                errors.append(field_error(f"{field_name}[{i}]", "must be an object", index=i))
                continue
            fields = (parse_time(point.get("time")), point.get("metric"), point.get("value"),
                      point.get("tags"))
            _check_point(batch, errors, point, fields, f"{field_name}[{i}]", i)
            continue
        time = parse_time(point.get("time"))
        metric = point.get("metric")
        value = point.get("value")
        tags = point.get("tags")
        if (time.__class__ is datetime and metric.__class__ is str and metric in metric_ok
                and (value.__class__ is float and -WIDE_INT < value < WIDE_INT
                     or value.__class__ is int and -MAX_EXACT_INT <= value <= MAX_EXACT_INT)):
            if not tags:
                tag_key = () if tags is None or tags.__class__ is dict else None
            elif tags.__class__ is dict:
                try:
                    tag_key = tags_ok.get(tuple(tags.items()))
                except TypeError:  # unhashable values: the full checks name them
                    tag_key = None
            else:
                tag_key = None
            if tag_key is not None:
                times.append(time)
                metrics.append(metric)
                values.append(float(value))
                tag_keys.append(tag_key)
                continue
        _check_point(batch, errors, point, (time, metric, value, tags), f"{field_name}[{i}]", i)
    if errors:
        raise batch_error(errors)
    return batch


def _check_point(batch: PointBatch, errors: list[dict[str, Any]], point: Any,
                 fields: tuple, where: str, i: int) -> None:
    """Every check of one point (its fields as read already), each failure in errors, or the
    point appended to batch."""
    time, metric, value, tags = fields
    n_errors = len(errors)
    if "time" not in point:
        errors.append(field_error(f"{where}.time", "is required", index=i))
    elif isinstance(time, str):
        errors.append(field_error(f"{where}.time", time, index=i))
    problem = check_metric_name(metric)
    if "metric" not in point:
        errors.append(field_error(f"{where}.metric", "is required", index=i))
    elif problem:
        errors.append(field_error(f"{where}.metric", problem, index=i))
    else:
        CHECKED.add_metric(metric)
    problem = check_value(value)
    if problem:
        errors.append(field_error(f"{where}.value", problem, index=i))
    if tags is None or (isinstance(tags, dict) and not tags):
        tag_key = ()  # the metric's untagged series
    else:
        try:
            memo_key = tuple(tags.items())
            tag_key = CHECKED.tag_sets.get(memo_key)
        except (TypeError, AttributeError):  # not a dict, or unhashable values
            memo_key = tag_key = None
        if tag_key is None:
            tag_key = _check_tags(tags, f"{where}.tags", errors, i)
            if memo_key is not None and tag_key is not None:
                CHECKED.add_tags(memo_key, tag_key)
    if len(errors) != n_errors:
        return
    batch.times.append(time)
    batch.metrics.append(metric)
    if isinstance(value, int):
        value = float(value)
    elif value.__class__ is float and not -WIDE_INT < value < WIDE_INT:
        batch.maybe_wide_integer = True
    batch.values.append(value)
    batch.tags.append(tag_key)


def batch_error(errors: list[dict[str, Any]]) -> InvalidInput:
    bad_points = len({e.get("index") for e in errors})
    shown = errors[:MAX_REPORTED_ERRORS]
    detail = f"{bad_points} invalid point(s); nothing was stored. First: {shown[0]['field']} "
    detail += shown[0]["message"]
    if len(errors) > len(shown):
        detail += f" ({len(shown)} of {len(errors)} errors listed)"
    return InvalidInput(detail, errors=shown)
