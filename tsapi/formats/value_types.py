"""A metric holds numbers or strings, never both: the one definition of a type conflict.

The writer checks a valid batch against the types it has locked in the database; ingest checks
a batch that already failed validation against the types it reads, so one answer lists every
problem. Both ask this module, so both say the same thing about the same point.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any

from tsapi.errors import field_error

NUMBER = "number"
STRING = "string"


def value_type(value: Any) -> str | None:
    """NUMBER or STRING, the type a metric takes from this value; None for neither."""
    if isinstance(value, str):
        return STRING
    if isinstance(value, int | float) and not isinstance(value, bool):
        return NUMBER
    return None


def type_conflicts(
    points: Iterable[tuple[int, str, str]], types: MutableMapping[str, str]
) -> list[dict[str, Any]]:
    """A field error for each (index, metric, value type) whose metric holds the other type.

    `types` maps the metrics already stored to their type; a metric missing from it takes
    the type of its first point here (as the writer would create it), and is added to it.
    """
    errors = []
    for index, name, actual in points:
        expected = types.setdefault(name, actual)
        if actual != expected:
            errors.append(field_error(
                f"data[{index}].value",
                f"metric '{name}' holds {expected} values; got a {actual}",
                index=index,
            ))
    return errors
