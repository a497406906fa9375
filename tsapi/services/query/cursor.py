"""Raw-page cursors: where the next page starts, tied to the query that issued it.

A cursor is URL-safe base64 of a small JSON object: the metric (by position), the key of the
last row sent (time, series id) and a fingerprint of the query. It is opaque to clients and
not secret: a forged one can only point into the same query's own rows.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from tsapi.errors import InvalidInput, field_error
from tsapi.services.query.request import QueryRequest


@dataclass(frozen=True)
class PageCursor:
    """Where a page starts: a metric (by position), and a row key within it."""

    metric_index: int
    after: tuple[datetime, int] | None  # None: from the metric's first row


FIRST_PAGE = PageCursor(0, None)


def fingerprint(request: QueryRequest) -> str:
    """What a cursor belongs to: the same metrics, tags, range and order.

    The basis is spelled as the untyped service spelled it (the metric or the list; tags and
    order only when given), so the cursors of a paging client stay valid across an upgrade.
    """
    basis = orjson.dumps(
        [None if request.multi else request.metrics[0],
         list(request.metrics) if request.multi else None,
         request.tags or None, request.start, request.end,
         "desc" if request.descending else None],
        option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(basis).hexdigest()[:16]


def encode_cursor(request: QueryRequest, cursor: PageCursor) -> str:
    after = cursor.after
    raw = orjson.dumps({
        "m": cursor.metric_index,
        "t": after[0].astimezone(UTC).isoformat() if after else None,
        "s": after[1] if after else None,
        "q": fingerprint(request),
    })
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(request: QueryRequest) -> PageCursor:
    """The request's cursor; FIRST_PAGE without one; InvalidInput (naming `cursor`) for one
    this service did not issue, or issued for another query."""
    text = request.cursor
    if text is None:
        return FIRST_PAGE
    try:
        data = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        index, issued_for = int(data["m"]), data["q"]
        after = None
        if data["t"] is not None:
            after = (datetime.fromisoformat(data["t"]), int(data["s"]))
        if not 0 <= index < len(request.metrics):
            raise ValueError(index)
    except (ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        raise InvalidInput("cursor is not a cursor this service issued",
                           errors=[field_error("cursor", "is malformed")]) from None
    if issued_for != fingerprint(request):
        raise InvalidInput(
            "cursor belongs to a different query (metrics, tags, range and order must match)",
            errors=[field_error("cursor", "does not match this query")])
    return PageCursor(index, after)
