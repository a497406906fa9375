"""The aggregation allowlist, shared by the request schemas, the planner and the SQL builder."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Every aggregation by name, with what the documentation says of it beyond its name, in the
# order it lists them. Everything below (sets, pattern, description) is derived from this.
NAMES: dict[str, str] = {
    "avg": "", "sum": "", "min": "", "max": "", "count": "", "first": "", "last": "",
    "median": "", "stddev": "", "count_distinct": "",
    "rate": "of a counter, per second", "increase": "of a counter, reset-aware",
    "delta": "last minus first",
}
# The value of the earliest / latest point itself: on a string metric, a string.
FIRST_LAST = ("first", "last")
# Aggregations that also work on string metrics; every other one needs numbers. In the order
# an error message suggests them.
ANY_TYPE = ("count", *FIRST_LAST, "count_distinct")
# Counter aggregations look at consecutive points of each series (reset-aware).
COUNTER = frozenset({"rate", "increase"})
# Aggregates that are one of the values aggregated, or lie among them: a point's own value is
# a fair stand-in (the seed of fill previous/linear). Counts, sums and rates are not.
VALUE_LIKE = frozenset({"avg", "min", "max", "median", *FIRST_LAST})
# ASCII digits only (`\d` also matches '٥٠', which float() reads as 50), and fullmatch: `$`
# would also match before a final newline.
PERCENTILE = re.compile(r"p([0-9]{1,2}(?:\.[0-9]{1,3})?)")
PERCENTILE_WORDS = "pNN (any percentile, e.g. p90, p99, p99.9)"
# The same allowlist as a regular expression, for the OpenAPI document.
PATTERN = "^(" + "|".join(sorted(NAMES)) + r"|p[0-9]{1,2}(\.[0-9]{1,3})?)$"


def _describe() -> str:
    plain = [name for name, note in NAMES.items() if not note]
    noted = [f"{name} ({note})" for name, note in NAMES.items() if note]
    words = [*plain, PERCENTILE_WORDS, *noted]
    return ", ".join(words[:-1]) + " and " + words[-1]


# For the OpenAPI document and for the message refusing an unknown name.
DESCRIPTION = _describe()


def any_type_words() -> str:
    """The aggregations a string metric allows, as a message suggests them."""
    return ", ".join(ANY_TYPE[:-1]) + " or " + ANY_TYPE[-1]


@dataclass(frozen=True)
class Aggregation:
    name: str
    percentile: float | None = None  # 0 < p < 1 for pNN

    @property
    def numeric_only(self) -> bool:
        return self.name not in ANY_TYPE

    @property
    def is_counter(self) -> bool:
        return self.name in COUNTER

    @property
    def picks_a_point(self) -> bool:
        """first/last: the result is one point's own value (a string on a string metric)."""
        return self.name in FIRST_LAST


def parse_aggregation(raw: str) -> Aggregation:
    """An Aggregation for a known name; ValueError with the reason otherwise."""
    if raw in NAMES:
        return Aggregation(raw)
    match = PERCENTILE.fullmatch(raw)
    if match:
        value = float(match.group(1))
        if 0 < value < 100:
            return Aggregation(raw, percentile=value / 100)
    raise ValueError(f"must be one of {DESCRIPTION}")


def keeps_values(aggregation: Aggregation) -> bool:
    return aggregation.name in VALUE_LIKE or aggregation.percentile is not None
