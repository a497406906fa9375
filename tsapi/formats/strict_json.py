"""Strict JSON reading: no repeated keys, no unpaired surrogates, no unbounded nesting or numbers.

orjson is the fast path. It refuses numbers beyond a double (1e999), NaN and Infinity, which
the standard parser reads as non-finite floats so the validator can name the point; it keeps
the last of repeated keys silently, which a cheap count on the raw bytes detects (see
ensure_unique_keys) without slowing ordinary bodies down.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from tsapi.errors import BadRequest, InvalidInput, field_error

# A key is written `"name":`, with optional whitespace before the colon: counted with the
# whitespace removed (one pass in C, faster than searching for each spaced form).
_KEY_END = b'":'
_WHITESPACE = b" \t\r\n"
# Limits of the reader, far beyond any real point: a point is an object holding tags (2
# levels); the largest double written as an integer has 309 digits (refused by the validator
# with a reason, so it must be read); a point's text is at most a 65,536-character string
# value and 32 tags of 1,024 characters, escaped.
MAX_DEPTH = 16
MAX_NUMBER_CHARS = 1000
MAX_VALUE_CHARS = 1024 * 1024
POINT_MEMBERS = ("time", "metric", "value", "tags")
# \uD800 to \uDFFF written as an escape: only then can a string hold a lone surrogate.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


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
        except ValueError:
            raise BadRequest(f"Request body is not valid JSON: {exc}") from None


class JsonLimit(ValueError):
    """A value is beyond what the reader accepts (a number too long); the message says why."""


def _bounded_int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise JsonLimit(f"a number is longer than {MAX_NUMBER_CHARS} characters")
    return int(text)


def _bounded_float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise JsonLimit(f"a number is longer than {MAX_NUMBER_CHARS} characters")
    return float(text)


def exact_decoder(**hooks: Any) -> json.JSONDecoder:
    """The standard parser (integers exact) with the number-length limit."""
    return json.JSONDecoder(parse_int=_bounded_int, parse_float=_bounded_float, **hooks)


def as_problem(exc: ValueError) -> BadRequest:
    """A 400 for what the standard parser refused."""
    if isinstance(exc, RepeatedKey):
        return repeated_key_problem(exc)
    if isinstance(exc, JsonLimit):
        return BadRequest(f"Request body is not accepted: {exc}")
    return BadRequest(f"Request body is not valid JSON: {exc}")


def loads_exactly(raw: bytes | str) -> Any:
    """The standard parser, refusing repeated keys, unpaired surrogate escapes, numbers longer
    than MAX_NUMBER_CHARS and nesting deeper than the interpreter's recursion limit."""
    if isinstance(raw, bytes | bytearray):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest(f"Request body is not valid JSON: not UTF-8 ({exc.reason})") from None
    try:
        value = _UNIQUE_DECODER.decode(raw)
    except RepeatedKey as exc:
        raise repeated_key_problem(exc) from None
    except JsonLimit as exc:
        raise as_problem(exc) from None
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
    reread()  # raises the problem for a repeated key


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


def repeated_key_message(exc: RepeatedKey) -> str:
    return (f"repeats the key '{exc.key[:64]}' in one object; which value is meant "
            "would be a guess")


def repeated_key_problem(exc: RepeatedKey) -> InvalidInput:
    message = repeated_key_message(exc)
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


_UNIQUE_DECODER = exact_decoder(object_pairs_hook=_unique_pairs)


def unique_keys_decoder() -> json.JSONDecoder:
    """The standard parser as it is, but raising RepeatedKey for a key an object repeats:
    for documents that are not batches of points (a /query request)."""
    return json.JSONDecoder(object_pairs_hook=_unique_pairs)


def _too_deep() -> BadRequest:
    return BadRequest("Request body is nested too deeply to be a batch of points")


too_deep = _too_deep


def depth_of(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deeply value nests objects and arrays (a scalar: 0), counting no further than
    limit + 1; a loop over containers only, so a point of scalars costs one check."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        cls = item.__class__
        if cls is dict:
            children = item.values()
        elif cls is list:
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if depth > limit:
            return depth
        stack.extend((child, depth + 1) for child in children
                     if child.__class__ is dict or child.__class__ is list)
    return deepest


def check_depth(points: list[Any]) -> None:
    """Refuse members a point does not have (which nothing reads) nested deeper than
    MAX_DEPTH; a point's own members are named by the validator when they are not scalars."""
    keys = _POINT_KEYS
    for p in points:
        if p.__class__ is not dict or p.keys() <= keys:
            continue
        for k, v in p.items():
            if (v.__class__ is dict or v.__class__ is list) and k not in POINT_MEMBERS and \
                    depth_of(v, MAX_DEPTH) > MAX_DEPTH:
                raise _nested_too_deep()


def _nested_too_deep() -> BadRequest:
    return BadRequest(f"Request body is not accepted: a point nests objects or arrays more "
                      f"than {MAX_DEPTH} levels deep")


def read_point(value: Any, text: str) -> Any:
    """One point read by the standard parser from `text`, checked (repeated keys, counted
    cheaply and confirmed exactly; unpaired surrogate escapes) and reduced (reduce_point)."""
    if value.__class__ is dict:
        tags = value.get("tags")
        members = len(value) + (len(tags) if tags.__class__ is dict else 0)
        if text.count('":') != members or (tags is not None and tags.__class__ is not dict):
            loads_exactly(text)  # raises for a repeated key; else the count was only unusual
        elif "\\u" in text and _SURROGATE_ESCAPE.search(text):
            loads_exactly(text)
    return reduce_point(value)


def reduce_point(value: Any) -> Any:
    """A point reduced to what the validator reads: unknown members dropped (once checked
    for nesting), and an empty container in place of any object or array where a scalar
    belongs (the validator's message does not depend on its contents). Memory then holds
    only what can be stored, whatever else a body carries."""
    if value.__class__ is not dict:
        return _emptied(value)
    if not value.keys() <= _POINT_KEYS:
        check_depth([value])
        value = {k: value[k] for k in POINT_MEMBERS if k in value}
    tags = value.get("tags")
    if (value.get("value").__class__ in _CONTAINERS or value.get("time").__class__ in
            _CONTAINERS or value.get("metric").__class__ in _CONTAINERS or tags.__class__ is list):
        value = {k: v if k == "tags" and v.__class__ is dict else _emptied(v)
                 for k, v in value.items()}
    if tags.__class__ is dict and not _TAG_VALUES.issuperset(map(type, tags.values())):
        value["tags"] = {k: _emptied(v) for k, v in tags.items()}
    return value


_POINT_KEYS = frozenset(POINT_MEMBERS)
_CONTAINERS = (dict, list)
_TAG_VALUES = frozenset((str, int, float, bool, type(None)))


def _emptied(value: Any) -> Any:
    cls = value.__class__
    return value if cls not in _CONTAINERS else cls()
