"""The typed statements and expressions the InfluxQL parser produces."""

from __future__ import annotations

from dataclasses import dataclass


# -- expressions ------------------------------------------------------------------------------
@dataclass(frozen=True)
class VarRef:
    """A field or tag name (or `time`); `kind` is the `::tag` / `::field` cast, if any."""

    name: str
    kind: str | None = None


@dataclass(frozen=True)
class Wildcard:
    """`*` in a field list or a call."""


@dataclass(frozen=True)
class Call:
    name: str  # lower case
    args: tuple


@dataclass(frozen=True)
class NumberLiteral:
    value: int | float


@dataclass(frozen=True)
class StringLiteral:
    value: str


@dataclass(frozen=True)
class DurationLiteral:
    nanoseconds: int


@dataclass(frozen=True)
class RegexLiteral:
    pattern: str


@dataclass(frozen=True)
class BinaryExpr:
    op: str  # AND OR = != < <= > >= =~ !~ + - * /
    lhs: object
    rhs: object


# -- clauses ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Field:
    expr: object
    alias: str | None = None


@dataclass(frozen=True)
class Measurement:
    name: str | None = None  # None with a regex
    regex: str | None = None
    database: str | None = None
    retention_policy: str | None = None


@dataclass(frozen=True)
class Fill:
    mode: str = "null"  # null | none | previous | linear | value
    value: float | int | None = None


@dataclass(frozen=True)
class SelectStatement:
    fields: tuple[Field, ...]
    sources: tuple[Measurement, ...]
    condition: object | None = None
    group_interval: int | None = None  # GROUP BY time(): nanoseconds
    group_offset: int = 0
    group_tags: tuple[str, ...] = ()
    group_all_tags: bool = False  # GROUP BY *
    fill: Fill = Fill()
    descending: bool = False
    limit: int = 0
    offset: int = 0
    slimit: int = 0
    soffset: int = 0
    timezone: str | None = None


@dataclass(frozen=True)
class ShowDatabases:
    pass


@dataclass(frozen=True)
class ShowRetentionPolicies:
    database: str | None = None


@dataclass(frozen=True)
class ShowMeasurements:
    name_op: str | None = None  # = != =~ !~ (WITH MEASUREMENT ...)
    name_value: str | None = None  # a name, or a regex pattern with =~ / !~
    condition: object | None = None
    limit: int = 0
    offset: int = 0


@dataclass(frozen=True)
class ShowFieldKeys:
    sources: tuple[Measurement, ...] = ()
    limit: int = 0
    offset: int = 0


@dataclass(frozen=True)
class ShowTagKeys:
    sources: tuple[Measurement, ...] = ()
    condition: object | None = None
    limit: int = 0
    offset: int = 0


@dataclass(frozen=True)
class ShowTagValues:
    key_op: str  # = != =~ !~ IN
    keys: tuple[str, ...]  # names, or one regex pattern with =~ / !~
    sources: tuple[Measurement, ...] = ()
    condition: object | None = None
    limit: int = 0
    offset: int = 0


@dataclass(frozen=True)
class ShowSeries:
    sources: tuple[Measurement, ...] = ()
    condition: object | None = None
    limit: int = 0
    offset: int = 0


Statement = (SelectStatement | ShowDatabases | ShowRetentionPolicies | ShowMeasurements
             | ShowFieldKeys | ShowTagKeys | ShowTagValues | ShowSeries)
