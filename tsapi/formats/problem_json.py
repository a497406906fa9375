"""JSON for error bodies, whatever text they quote from a request.

A message may quote what a client sent, and a JSON string escape ("\\ud800") or a byte that
is not UTF-8 (read with surrogateescape) can put a lone surrogate into it, which is no UTF-8
and which orjson refuses: the answer to bad input became a 500. Such a character is shown
as its escape instead.
"""

from __future__ import annotations

from typing import Any

import orjson


def dumps(body: Any) -> bytes:
    """orjson's bytes of body; a lone surrogate in any string written as `\\udXXX` text."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:  # "str is not valid UTF-8: surrogates not allowed"
        return orjson.dumps(_quoted(body))


def _quoted(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_quoted(k): _quoted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_quoted(v) for v in value]
    return value
