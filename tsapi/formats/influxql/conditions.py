"""WHERE clauses: the time range they bound, and the tag predicate they leave.

InfluxQL mixes both in one boolean expression; tsapi needs a range and a set of series. The
top-level AND terms that compare `time` give the range; every other term must compare tags
(fields conditions are not supported) and is evaluated against each series' tags.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from tsapi.formats.influxql import ast
from tsapi.formats.influxql.tokens import MAX_REGEX_CHARS, InfluxQLError

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
    for term in _conjuncts(expr):
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


def _conjuncts(expr) -> list:
    if isinstance(expr, ast.BinaryExpr) and expr.op == "AND":
        return _conjuncts(expr.lhs) + _conjuncts(expr.rhs)
    return [expr]


def _mentions_time(expr) -> bool:
    if isinstance(expr, ast.VarRef):
        return expr.name.lower() == "time"
    if isinstance(expr, ast.BinaryExpr):
        return _mentions_time(expr.lhs) or _mentions_time(expr.rhs)
    if isinstance(expr, ast.Call):
        return expr.name == "now" or any(_mentions_time(a) for a in expr.args)
    return False


_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "="}


def _time_bounds(term, now_ns: int) -> tuple[int | None, int | None]:
    if not (isinstance(term, ast.BinaryExpr) and term.op in _FLIP):
        raise InfluxQLError("invalid time condition: only time comparisons combined with "
                            "AND are supported (no OR, no !=)")
    op, lhs, rhs = term.op, term.lhs, term.rhs
    if not (isinstance(lhs, ast.VarRef) and lhs.name.lower() == "time"):
        op, lhs, rhs = _FLIP[op], rhs, lhs
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
    r"(Z|[+-]\d{2}:\d{2})?$")


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


# -- tag predicates ---------------------------------------------------------------------------
def predicate_keys(expr) -> set[str]:
    """The tag keys a predicate reads; InfluxQLError for anything that is not a tag test."""
    if isinstance(expr, ast.BinaryExpr) and expr.op in ("AND", "OR"):
        return predicate_keys(expr.lhs) | predicate_keys(expr.rhs)
    key, _ = _tag_test(expr)
    return {key}


def _tag_test(expr) -> tuple[str, Callable[[str], bool]]:
    if not isinstance(expr, ast.BinaryExpr) or expr.op not in ("=", "!=", "=~", "!~"):
        raise InfluxQLError("unsupported condition: only tag comparisons (=, !=, =~, !~) "
                            "and time ranges are supported in WHERE")
    lhs, rhs = expr.lhs, expr.rhs
    if not isinstance(lhs, ast.VarRef):
        lhs, rhs = rhs, lhs
    if not isinstance(lhs, ast.VarRef) or lhs.kind == "field":
        raise InfluxQLError("unsupported condition: compare a tag with a string or a regex")
    if expr.op in ("=~", "!~"):
        if not isinstance(rhs, ast.RegexLiteral):
            raise InfluxQLError(f"unsupported condition: {expr.op} needs a /regex/")
        pattern = compile_regex(rhs.pattern)
        if expr.op == "=~":
            return lhs.name, lambda v: pattern.search(v) is not None
        return lhs.name, lambda v: pattern.search(v) is None
    if not isinstance(rhs, ast.StringLiteral):
        raise InfluxQLError("unsupported condition: compare a tag with a 'string' "
                            "(conditions on fields are not supported)")
    wanted = rhs.value
    if expr.op == "=":
        return lhs.name, lambda v: v == wanted
    return lhs.name, lambda v: v != wanted


def matches(expr, tags: Mapping[str, str]) -> bool:
    """Whether a series with these tags passes the predicate (a missing tag reads as '')."""
    if expr is None:
        return True
    if isinstance(expr, ast.BinaryExpr) and expr.op == "AND":
        return matches(expr.lhs, tags) and matches(expr.rhs, tags)
    if isinstance(expr, ast.BinaryExpr) and expr.op == "OR":
        return matches(expr.lhs, tags) or matches(expr.rhs, tags)
    key, test = _tag_test(expr)
    return test(tags.get(key) or "")


# -- regular expressions ----------------------------------------------------------------------
# Python's `re` backtracks, so only a subset is accepted: no backreferences or lookaround, no
# quantifier applied to a group that itself holds a quantifier or an alternation (the shapes
# that backtrack exponentially), and a bounded number of quantifiers overall.
MAX_QUANTIFIERS = 16
_QUANTIFIER = re.compile(r"[*+?]|\{\d*,?\d*\}")
# (?i) (?is) set flags; (?:  (?i:  (?P<name> open a group.
_GROUP_FLAGS = re.compile(r"\(\?(?:[imsU]+\)|[imsU]*:|P<[A-Za-z_][A-Za-z0-9_]*>)")


def compile_regex(pattern: str) -> re.Pattern:
    if len(pattern) > MAX_REGEX_CHARS:
        raise InfluxQLError(f"regular expression is longer than {MAX_REGEX_CHARS} characters")
    _check_regex(pattern)
    try:
        return re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise InfluxQLError(f"invalid regular expression /{pattern[:64]}/: {exc}") from None


def _check_regex(pattern: str) -> None:
    # A stack of open groups: for each, whether it holds a quantifier or an alternation.
    stack: list[bool] = [False]
    quantifiers, i, n = 0, 0, len(pattern)
    closed_risky = False  # the group just closed holds a quantifier or an alternation
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 < n and (pattern[i + 1].isdigit() and pattern[i + 1] != "0"):
                raise InfluxQLError("backreferences are not supported in regular expressions")
            if i + 1 < n and pattern[i + 1] in "pPxXkg":
                raise InfluxQLError(f"\\{pattern[i + 1]} is not supported in regular "
                                    "expressions")
            i += 2
            closed_risky = False
            continue
        if c == "[":
            j = i + 1
            if j < n and pattern[j] == "^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            i = j + 1
            closed_risky = False
            continue
        if c == "(":
            closed_risky = False
            if pattern.startswith("(?", i):
                flags = _GROUP_FLAGS.match(pattern, i)
                if flags is None:
                    raise InfluxQLError("lookaround, backreferences and this group syntax "
                                        "are not supported in regular expressions")
                i = flags.end()
                if flags.group(0).endswith(")"):
                    continue  # (?i): flags only, no group
            else:
                i += 1
            if len(stack) > 16:
                raise InfluxQLError("regular expression nested too deeply")
            stack.append(False)
            continue
        elif c == ")":
            if len(stack) == 1:
                raise InfluxQLError("invalid regular expression: unbalanced )")
            closed_risky = stack.pop()
            stack[-1] = stack[-1] or closed_risky
        elif c == "|":
            stack[-1] = True
            closed_risky = False
        elif _QUANTIFIER.match(pattern, i):
            quantifiers += 1
            if quantifiers > MAX_QUANTIFIERS:
                raise InfluxQLError(f"more than {MAX_QUANTIFIERS} quantifiers in a regular "
                                    "expression")
            if closed_risky:
                raise InfluxQLError("a repeated group may not contain a repetition or an "
                                    "alternation (it could take exponential time)")
            stack[-1] = True
            i = _QUANTIFIER.match(pattern, i).end()
            if i < n and pattern[i] in "?+":
                i += 1
            closed_risky = False
            continue
        else:
            closed_risky = False
        i += 1


# -- field conditions (raw queries) -------------------------------------------------------------
def split_fields(predicate, is_field: Callable[[str], bool]) -> tuple[object | None,
                                                                        object | None]:
    """(tag predicate, field predicate): the AND terms that read a field value go right."""
    if predicate is None:
        return None, None
    tags, fields = None, None
    for term in _conjuncts(predicate):
        if _reads_field(term, is_field):
            fields = term if fields is None else ast.BinaryExpr("AND", fields, term)
        else:
            tags = term if tags is None else ast.BinaryExpr("AND", tags, term)
    return tags, fields


def field_names(expr, is_field: Callable[[str], bool]) -> set[str]:
    if isinstance(expr, ast.VarRef):
        return {expr.name} if expr.kind != "tag" and is_field(expr.name) else set()
    if isinstance(expr, ast.BinaryExpr):
        return field_names(expr.lhs, is_field) | field_names(expr.rhs, is_field)
    return set()


def _reads_field(expr, is_field: Callable[[str], bool]) -> bool:
    if isinstance(expr, ast.VarRef):
        return expr.kind == "field" or (expr.kind is None and is_field(expr.name))
    if isinstance(expr, ast.BinaryExpr):
        return _reads_field(expr.lhs, is_field) or _reads_field(expr.rhs, is_field)
    return False


_COMPARE = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


def row_matches(expr, tags: Mapping[str, str], values: Mapping[str, object],
                is_field: Callable[[str], bool]) -> bool:
    """Whether one raw row (a series' tags, its field values at one time) passes."""
    if isinstance(expr, ast.BinaryExpr) and expr.op in ("AND", "OR"):
        left = row_matches(expr.lhs, tags, values, is_field)
        if expr.op == "AND":
            return left and row_matches(expr.rhs, tags, values, is_field)
        return left or row_matches(expr.rhs, tags, values, is_field)
    if not _reads_field(expr, is_field):
        return matches(expr, tags)
    if not isinstance(expr, ast.BinaryExpr):
        raise InfluxQLError("unsupported condition: compare a field with a number or string")
    op, lhs, rhs = expr.op, expr.lhs, expr.rhs
    if not isinstance(lhs, ast.VarRef):
        op, lhs, rhs = _FLIP.get(op, op), rhs, lhs
    if not isinstance(lhs, ast.VarRef) or isinstance(rhs, ast.VarRef):
        raise InfluxQLError("unsupported condition: compare a field with a literal")
    value = values.get(lhs.name)
    if op in ("=~", "!~"):
        if not isinstance(rhs, ast.RegexLiteral):
            raise InfluxQLError(f"unsupported condition: {op} needs a /regex/")
        if not isinstance(value, str):
            return False
        found = compile_regex(rhs.pattern).search(value) is not None
        return found if op == "=~" else not found
    if op not in _COMPARE:
        raise InfluxQLError(f"unsupported condition: {op} on a field")
    if isinstance(rhs, ast.NumberLiteral):
        wanted = rhs.value
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif isinstance(rhs, ast.StringLiteral):
        wanted, ok = rhs.value, isinstance(value, str)
    else:
        raise InfluxQLError("unsupported condition: compare a field with a number or string")
    return ok and _COMPARE[op](value, wanted)
