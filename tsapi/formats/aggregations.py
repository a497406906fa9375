"""The aggregation allowlist, shared by the request schemas and the SQL builder."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Aggregations that also work on string metrics; every other one needs numbers.
ANY_TYPE = frozenset({"count", "first", "last", "count_distinct"})
NUMERIC = frozenset({"avg", "sum", "min", "max", "median", "stddev", "rate", "delta",
                     "increase"})
# Counter aggregations look at consecutive points of each series (reset-aware).
COUNTER = frozenset({"rate", "increase"})
NAMES = ANY_TYPE | NUMERIC
PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d{1,3})?)$")
# The same allowlist as a regular expression, for the OpenAPI document.
PATTERN = "^(" + "|".join(sorted(NAMES)) + r"|p\d{1,2}(\.\d{1,3})?)$"
DESCRIPTION = (
    "avg, sum, min, max, count, first, last, median, stddev, pNN (any percentile, e.g. "
    "p90, p99, p99.9), count_distinct, and for counters rate (per second), increase "
    "(reset-aware) and delta (last minus first)"
)


@dataclass(frozen=True)
class Aggregation:
    name: str
    percentile: float | None = None  # 0 < p < 1 for pNN

    @property
    def numeric_only(self) -> bool:
        return self.name not in ANY_TYPE


def parse_aggregation(raw: str) -> Aggregation:
    """An Aggregation for a known name; ValueError with the reason otherwise."""
    if raw in NAMES:
        return Aggregation(raw)
    match = PERCENTILE.match(raw)
    if match:
        value = float(match.group(1))
        if 0 < value < 100:
            return Aggregation(raw, percentile=value / 100)
    raise ValueError(f"must be one of {DESCRIPTION}")


# Aggregates that are one of the values aggregated, or lie among them: a point's own value is
# a fair stand-in (the seed of fill previous/linear). Counts, sums and rates are not.
VALUE_LIKE = frozenset({"avg", "min", "max", "first", "last", "median"})


def keeps_values(aggregation: Aggregation) -> bool:
    return aggregation.name in VALUE_LIKE or aggregation.percentile is not None
