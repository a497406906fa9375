"""Domain exceptions: raised by formats, store and services, turned into HTTP by tsapi.api.

They carry what went wrong (a detail, per-field errors, extra members a client displays), never
an HTTP status: tsapi.api.problems maps each class to its status in one table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class TsapiError(Exception):
    """Base of every error the service reports to its caller."""

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        members: Mapping[str, Any] | None = None,
    ):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        # Extra members for the problem body, e.g. the `line` InfluxDB clients display.
        self.members = dict(members or {})


class BadRequest(TsapiError):
    """The request cannot be read at all (not JSON, broken gzip) or asks for the impossible."""


class InvalidInput(TsapiError):
    """Readable, but some fields are wrong: `errors` names each one."""


class ResultOutOfRange(InvalidInput):
    """The database could not hold a result: a sum or mean past the largest double."""

    def __init__(self) -> None:
        super().__init__("The result is outside the range of a double-precision number "
                         "(e.g. a sum that overflows); aggregate over a shorter range or "
                         "interval.")


class NotFound(TsapiError):
    """A named thing (a metric) does not exist."""


class PayloadTooLarge(TsapiError):
    """Over a size or count limit."""


class UnsupportedMediaType(TsapiError):
    """A body encoding or type the service does not read."""


def field_error(field: str, message: str, **extra: Any) -> dict[str, Any]:
    """One entry of an error's `errors` list: which field, what is wrong with it."""
    return {"field": field, "message": message, **extra}


def metric_not_found(name: str) -> NotFound:
    return NotFound(f"Metric '{name}' not found")
