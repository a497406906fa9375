"""The columns of a SELECT: which field each reads and through which InfluxQL function."""

from __future__ import annotations

from dataclasses import dataclass

from tsapi.formats.influxql import ast
from tsapi.formats.influxql.results import (
    column_names,
)
from tsapi.formats.influxql.tokens import InfluxQLError
from tsapi.services.influxql.catalog import MeasurementInfo

# InfluxQL function -> /query aggregation.
AGGREGATIONS = {"mean": "avg", "median": "median", "count": "count", "sum": "sum",
                "min": "min", "max": "max", "first": "first", "last": "last",
                "stddev": "stddev"}
SELECTORS = frozenset({"first", "last", "min", "max", "percentile"})
FROM_RAW = frozenset({"percentile", "distinct"})
DERIVATIVES = frozenset({"derivative", "non_negative_derivative"})
NUMERIC = frozenset({"mean", "median", "sum", "min", "max", "stddev", "spread",
                     "percentile"})
SECOND = 1_000_000_000
MAX_GROUP_KEYS = 8


@dataclass(frozen=True)
class Column:
    name: str
    function: str | None  # None: a raw field or tag
    field: str
    percentile: float | None = None
    derivative: str | None = None  # derivative | non_negative_derivative
    # Per how long a derivative is; None: the GROUP BY time() interval (an aggregate's
    # derivative without a unit, as InfluxDB takes it).
    unit: int | None = SECOND
    is_tag: bool = False


def plan_columns(stmt: ast.SelectStatement, info: MeasurementInfo) -> list[Column]:
    """The columns a SELECT's fields ask for, named as InfluxDB names them."""
    columns: list[Column] = []
    aliased: list[bool] = []
    tag_keys = set(info.tag_keys)
    for item in stmt.fields:
        expr = item.expr
        before = len(columns)
        if isinstance(expr, ast.Wildcard):
            if stmt.group_interval is not None:
                raise InfluxQLError("GROUP BY time() needs an aggregate function")
            hidden = set(stmt.group_tags) | (tag_keys if stmt.group_all_tags else set())
            names = sorted(set(info.fields) | (tag_keys - hidden))
            columns.extend(Column(n, None, n, is_tag=n not in info.fields) for n in names)
        elif isinstance(expr, ast.VarRef):
            if expr.name.lower() == "time":
                continue
            is_tag = expr.kind == "tag" or (expr.name not in info.fields
                                            and expr.name in tag_keys)
            columns.append(Column(item.alias or expr.name, None, expr.name, is_tag=is_tag))
        elif isinstance(expr, ast.Call):
            columns.append(_call_column(expr, item.alias))
        else:
            raise InfluxQLError("unsupported expression in SELECT: only fields, tags, * and "
                                "functions of one field (no arithmetic, no literals)")
        aliased.extend([item.alias is not None] * (len(columns) - before))
    if not columns:
        raise InfluxQLError("at least 1 non-time field must be queried")
    raw = [c for c in columns if c.function is None]
    if raw and len(raw) != len(columns):
        raise InfluxQLError("mixing aggregate and non-aggregate queries is not supported")
    if not raw and stmt.group_interval is None and any(
            c.derivative and c.function not in (None, "raw") for c in columns):
        raise InfluxQLError("derivative aggregate requires a GROUP BY interval")
    if any(c.function == "distinct" for c in columns) and len(columns) > 1:
        raise InfluxQLError("aggregate function distinct() cannot be combined with other "
                            "functions or fields")
    if raw and stmt.group_interval is not None:
        raise InfluxQLError("GROUP BY requires at least one aggregate function")
    names = column_names([c.name for c in columns], aliased)
    return [Column(n, c.function, c.field, c.percentile, c.derivative, c.unit, c.is_tag)
            for n, c in zip(names, columns, strict=True)]


def _call_column(expr: ast.Call, alias: str | None) -> Column:
    name = expr.name
    if name in DERIVATIVES:
        if not 1 <= len(expr.args) <= 2:
            raise InfluxQLError(f"invalid number of arguments for {name}, expected at least "
                                "1 but no more than 2")
        unit = SECOND
        if len(expr.args) == 2:
            if not isinstance(expr.args[1], ast.DurationLiteral) or expr.args[1].nanoseconds \
                    <= 0:
                raise InfluxQLError(f"second argument to {name} must be a duration, got "
                                    "something else")
            unit = expr.args[1].nanoseconds
        inner = expr.args[0]
        if isinstance(inner, ast.VarRef):
            # derivative(field): over raw points, so its column is raw but transformed.
            return Column(alias or name, "raw", inner.name, derivative=name, unit=unit)
        if isinstance(inner, ast.Call):
            base = _call_column(inner, None)
            if base.derivative or base.function == "distinct":
                raise InfluxQLError(f"unsupported call inside {name}")
            return Column(alias or name, base.function, base.field, base.percentile, name,
                          unit if len(expr.args) == 2 else None)
        raise InfluxQLError(f"expected field argument in {name}()")
    if name == "count" and len(expr.args) == 1 and isinstance(expr.args[0], ast.Call) \
            and expr.args[0].name == "distinct":
        inner = expr.args[0]
        if len(inner.args) != 1 or not isinstance(inner.args[0], ast.VarRef):
            raise InfluxQLError("distinct function requires at least one argument")
        return Column(alias or "count", "count_distinct", inner.args[0].name)
    if name == "percentile":
        if len(expr.args) != 2 or not isinstance(expr.args[0], ast.VarRef) \
                or not isinstance(expr.args[1], ast.NumberLiteral):
            raise InfluxQLError("invalid number of arguments for percentile, expected 2")
        return Column(alias or name, name, expr.args[0].name, float(expr.args[1].value))
    if name in AGGREGATIONS or name in ("spread", "distinct"):
        if len(expr.args) != 1:
            raise InfluxQLError(f"invalid number of arguments for {name}, expected 1, got "
                                f"{len(expr.args)}")
        arg = expr.args[0]
        if isinstance(arg, ast.Wildcard):
            raise InfluxQLError(f"unsupported call: {name}(*) (name the field)")
        if not isinstance(arg, ast.VarRef):
            raise InfluxQLError(f"expected field argument in {name}()")
        return Column(alias or name, name, arg.name)
    raise InfluxQLError(f"unsupported call: {name}")
