"""WHERE clauses: the time range they bound, and the predicate they leave.

InfluxQL mixes both in one boolean expression; tsapi needs a range and a set of series. The
top-level AND terms that compare `time` give the range; the other terms are the predicate
(tsapi.formats.influxql.predicates), tested against series tags and raw rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from tsapi.formats.influxql import ast
from tsapi.formats.influxql.tokens import MAX_INT64, InfluxQLError

# InfluxDB's own bounds of a timestamp (int64 nanoseconds, less a margin it reserves).
MIN_TIME = -9223372036854775806
MAX_TIME = 9223372036854775806
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class TimeRange:
    start: int | None = None  # nanoseconds, inclusive
    end: int | None = None  # nanoseconds, inclusive


def split_condition(expr, now_ns: int) -> tuple[TimeRange, object | None]:
    """The time range and the remaining (tag) predicate of a WHERE expression."""
    if expr is None:
        return TimeRange(), None
    start, end, rest = None, None, []
    for term in conjuncts(expr):
        if _mentions_time(term):
            lo, hi = _time_bounds(term, now_ns)
            if lo is not None:
                start = lo if start is None else max(start, lo)
            if hi is not None:
                end = hi if end is None else min(end, hi)
        else:
            rest.append(term)
    predicate = None
    for term in rest:
        predicate = term if predicate is None else ast.BinaryExpr("AND", predicate, term)
    return TimeRange(start, end), predicate


def conjuncts(expr) -> list:
    if isinstance(expr, ast.BinaryExpr) and expr.op == "AND":
        return conjuncts(expr.lhs) + conjuncts(expr.rhs)
    return [expr]


def _mentions_time(expr) -> bool:
    if isinstance(expr, ast.VarRef):
        return expr.name.lower() == "time"
    if isinstance(expr, ast.BinaryExpr):
        return _mentions_time(expr.lhs) or _mentions_time(expr.rhs)
    if isinstance(expr, ast.Call):
        return expr.name == "now" or any(_mentions_time(a) for a in expr.args)
    return False


FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "="}


def _time_bounds(term, now_ns: int) -> tuple[int | None, int | None]:
    if not (isinstance(term, ast.BinaryExpr) and term.op in FLIP):
        raise InfluxQLError("invalid time condition: only time comparisons combined with "
                            "AND are supported (no OR, no !=)")
    op, lhs, rhs = term.op, term.lhs, term.rhs
    if not (isinstance(lhs, ast.VarRef) and lhs.name.lower() == "time"):
        op, lhs, rhs = FLIP[op], rhs, lhs
    if not (isinstance(lhs, ast.VarRef) and lhs.name.lower() == "time"):
        raise InfluxQLError("invalid time condition: compare time with a time literal")
    value = time_value(rhs, now_ns)
    if op == "=":
        return value, value
    if op == ">":
        return value + 1, None
    if op == ">=":
        return value, None
    if op == "<":
        return None, value - 1
    return None, value


def time_value(expr, now_ns: int) -> int:
    """Nanoseconds since the epoch of a time literal: now(), a string, a number, arithmetic."""
    if isinstance(expr, ast.Call) and expr.name == "now" and not expr.args:
        return now_ns
    if isinstance(expr, ast.DurationLiteral):
        return expr.nanoseconds
    if isinstance(expr, ast.NumberLiteral):
        if isinstance(expr.value, float):
            raise InfluxQLError("invalid time condition: a float is not a time")
        if expr.value > MAX_INT64:  # InfluxDB's words for its unsigned literal here
            raise InfluxQLError("invalid operation: time and *influxql.UnsignedLiteral are "
                                "not compatible")
        return expr.value
    if isinstance(expr, ast.StringLiteral):
        return parse_time_string(expr.value)
    if isinstance(expr, ast.BinaryExpr) and expr.op in ("+", "-"):
        lhs = time_value(expr.lhs, now_ns)
        if not isinstance(expr.rhs, ast.DurationLiteral | ast.NumberLiteral):
            raise InfluxQLError("invalid time condition: add or subtract a duration")
        rhs = time_value(expr.rhs, now_ns)
        value = lhs + rhs if expr.op == "+" else lhs - rhs
        if not MIN_TIME <= value <= MAX_TIME:
            raise InfluxQLError("time outside range -9223372036854775806 to "
                                "9223372036854775806")
        return value
    raise InfluxQLError("invalid time condition: expected now(), a time string, a number "
                        "or a duration")


_TIME_STRING = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?)?"
    r"(Z|[+-]\d{2}:\d{2})?$", re.ASCII)


def parse_time_string(text: str) -> int:
    match = _TIME_STRING.match(text)
    if not match:
        raise InfluxQLError(f"invalid time string '{text[:64]}': use RFC 3339, e.g. "
                            "'2020-07-12T00:00:00Z'")
    y, mo, d, h, mi, s, frac, zone = match.groups()
    try:
        moment = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0),
                          tzinfo=UTC)
        if zone and zone != "Z":
            sign = 1 if zone[0] == "+" else -1
            offset = sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
        else:
            offset = 0
    except ValueError:
        raise InfluxQLError(f"invalid time string '{text[:64]}'") from None
    seconds = (moment - _EPOCH).days * 86400 + (moment - _EPOCH).seconds - offset
    value = seconds * 1_000_000_000 + int((frac or "").ljust(9, "0") or 0)
    if not MIN_TIME <= value <= MAX_TIME:
        raise InfluxQLError(f"time '{text[:64]}' is outside the range InfluxDB represents")
    return value
