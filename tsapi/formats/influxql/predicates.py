"""WHERE predicates: tag tests evaluated against a series' tags, and conditions on field
values evaluated against one raw row (InfluxDB reads a missing tag as '')."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from tsapi.formats.influxql import ast
from tsapi.formats.influxql.regex import compile_regex
from tsapi.formats.influxql.timerange import FLIP, conjuncts
from tsapi.formats.influxql.tokens import InfluxQLError


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


# -- field conditions (raw queries) -------------------------------------------------------------
def split_fields(predicate, is_field: Callable[[str], bool]) -> tuple[object | None,
                                                                        object | None]:
    """(tag predicate, field predicate): the AND terms that read a field value go right."""
    if predicate is None:
        return None, None
    tags, fields = None, None
    for term in conjuncts(predicate):
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
        op, lhs, rhs = FLIP.get(op, op), rhs, lhs
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
