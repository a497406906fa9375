"""Line protocol's pieces: a parsed line, a line's error, and field values and timestamps."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

FieldValue = float | int | bool | str

TRUE = frozenset(("t", "T", "true", "True", "TRUE"))
FALSE = frozenset(("f", "F", "false", "False", "FALSE"))
_DIGITS = frozenset("0123456789")


class Line(NamedTuple):
    number: int
    measurement: str
    tags: tuple[tuple[str, str], ...]  # in the order written, no key twice
    fields: list[tuple[str, FieldValue]]
    timestamp: int | None
    text: str  # the line as sent, for error messages


@dataclass(frozen=True)
class LineError:
    number: int
    reason: str
    text: str

    def __str__(self) -> str:
        shown = self.text if len(self.text) <= 80 else self.text[:77] + "..."
        return f"line {self.number}: {self.reason}: '{shown}'"


class BadLine(ValueError):
    """A line is malformed; the message says why."""


class UnterminatedString(BadLine):
    """A quoted string reaches the end of the text (it may go on in text still to come)."""


def field_value(raw: str, key: str) -> FieldValue:
    """A field value without quotes: float, integer (i), unsigned (u) or boolean."""
    if (raw and raw[-1] in _DIGITS and raw[0] != "+" and "_" not in raw and raw.isascii()
            and raw[0] > " "):
        # The usual float, without the other spellings' tests first (no suffix and no
        # boolean ends in a digit); read as general_field_value reads it (a test holds it).
        try:
            value = float(raw)
        except ValueError:
            raise BadLine(f"field '{key}' has an invalid value '{raw[:64]}'") from None
        if not math.isfinite(value):
            raise BadLine(f"field '{key}' has an invalid value '{raw[:64]}'")
        return value
    return general_field_value(raw, key)


def general_field_value(raw: str, key: str) -> FieldValue:
    """field_value for every spelling."""
    if not raw:
        raise BadLine(f"field '{key}' has no value")
    last = raw[-1]
    try:
        if not _plain(raw):
            raise ValueError
        if last == "i" or last == "u":
            digits = raw[:-1]
            if "_" in digits or not digits or digits[0] == "+" or not _plain(digits):
                raise ValueError
            number = int(digits)
            if last == "u" and (number < 0 or digits[0] == "-"):
                raise BadLine(f"field '{key}' is unsigned but negative")
            return number
        if raw in TRUE:
            return True
        if raw in FALSE:
            return False
        if "_" in raw or raw[0] == "+":
            raise ValueError
        value = float(raw)
    except BadLine:
        raise
    except ValueError:
        raise BadLine(f"field '{key}' has an invalid value '{raw[:64]}'") from None
    if not math.isfinite(value):
        raise BadLine(f"field '{key}' has an invalid value '{raw[:64]}'")
    return value


def _plain(raw: str) -> bool:
    # float() and int() also read other scripts' digits (١, １) and strip blanks around the
    # number (vertical tab, no-break space); InfluxDB refuses such a number, and so do we.
    return raw.isascii() and raw[0] > " " and raw[-1] > " "


def parse_timestamp(raw: str) -> int:
    if "_" in raw or raw[0] == "+" or not _plain(raw):
        raise BadLine(f"invalid timestamp '{raw[:64]}'")
    try:
        return int(raw)
    except ValueError:
        raise BadLine(f"invalid timestamp '{raw[:64]}'") from None
