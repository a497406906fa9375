"""Strict JSON reading: no repeated keys, no unpaired surrogates, no unbounded nesting.

orjson is the fast path. It refuses numbers beyond a double (1e999), NaN and Infinity, which
the standard parser reads as non-finite floats so the validator can name the point; it keeps
the last of repeated keys silently, which a cheap count on the raw bytes detects (see
ensure_unique_keys) without slowing ordinary bodies down.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from tsapi.errors import BadRequest, InvalidInput, field_error

# A key is written `"name":`, with optional whitespace before the colon: counted with the
# whitespace removed (one pass in C, faster than searching for each spaced form).
_KEY_END = b'":'
_WHITESPACE = b" \t\r\n"


class RepeatedKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def loads(raw: bytes) -> Any:
    """Parse a JSON document; a 400 problem for anything that is not strict JSON."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise _too_deep() from None
        try:
            return loads_exactly(raw)
        except RepeatedKey as repeated:
            raise repeated_key_problem(repeated) from None
        except ValueError:
            raise BadRequest(f"Request body is not valid JSON: {exc}") from None


def loads_exactly(raw: bytes | str) -> Any:
    """The standard parser, refusing repeated keys and unpaired surrogate escapes."""
    try:
        value = json.loads(raw, object_pairs_hook=_unique_pairs)
    except RecursionError:
        raise _too_deep() from None
    try:
        # orjson refuses "\ud800" alone, but the standard parser accepts it; PostgreSQL
        # cannot store it. Only this slow path can have one, so only it pays for the check.
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise BadRequest("Request body is not valid JSON: a string has an unpaired UTF-16 "
                       "surrogate escape (\\ud800 to \\udfff)") from None
    except RecursionError:
        raise _too_deep() from None
    return value


def ensure_unique_keys(raw: bytes, members: int | None, reread) -> None:
    """Raise InvalidInput if an object in raw repeats a key.

    `members` counts the object members in what orjson parsed (None: unknown). Without
    whitespace, every key in the raw text ends in `":`, and so may a string holding `\\":`:
    so the count is at least the number of keys written, and equal to `members` only if no
    key was dropped. Anything else (rare) is settled by `reread`, the exact parser.
    """
    if members is not None and raw.translate(None, _WHITESPACE).count(_KEY_END) == members:
        return
    try:
        reread()
    except RepeatedKey as exc:
        raise repeated_key_problem(exc) from None


def point_members(points: list[Any]) -> int | None:
    """Object members of a list of points (their keys and their tags' keys); None when a
    point or its tags are not objects, as the count would not be exact."""
    members = 0
    for p in points:
        if p.__class__ is not dict:
            return None
        members += len(p)
        tags = p.get("tags")
        if tags is not None:
            if tags.__class__ is not dict:
                return None
            members += len(tags)
    return members


def repeated_key_problem(exc: RepeatedKey) -> InvalidInput:
    message = (f"repeats the key '{exc.key[:64]}' in one object; which value is meant "
               "would be a guess")
    return InvalidInput(f"Request body {message}. Nothing was stored.",
                        errors=[field_error("body", message)])


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise RepeatedKey(key)
            seen.add(key)
    return obj


def _too_deep() -> BadRequest:
    return BadRequest("Request body is nested too deeply to be a batch of points")
