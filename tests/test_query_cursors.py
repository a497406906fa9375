"""Raw-page cursors: they lead back to the row after the page, and only for their own query."""

import base64
import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest

from tsapi.errors import InvalidInput
from tsapi.services.query.cursor import (
    FIRST_PAGE,
    PageCursor,
    decode_cursor,
    encode_cursor,
    fingerprint,
)
from tsapi.services.query.request import QueryRequest

START = datetime(2024, 3, 1, tzinfo=UTC)
REQUEST = QueryRequest(metrics=("cpu",), start=START, end=START + timedelta(days=1), limit=10)


def resumed(req: QueryRequest, cursor: PageCursor, issued_by: QueryRequest | None = None):
    return decode_cursor(replace(req, cursor=encode_cursor(issued_by or req, cursor)))


def field_of(caught) -> list[str]:
    return [e["field"] for e in caught.value.errors]


def test_without_a_cursor_paging_starts_at_the_first_row_of_the_first_metric():
    assert decode_cursor(REQUEST) == FIRST_PAGE == PageCursor(0, None)


@pytest.mark.parametrize("after", [
    None, (START, 1), (datetime(2024, 3, 1, 12, 30, 0, 500, tzinfo=UTC), 2**40),
])
def test_a_cursor_comes_back_as_it_was_issued(after):
    two = replace(REQUEST, metrics=("cpu", "mem"), multi=True)
    assert resumed(two, PageCursor(1, after)) == PageCursor(1, after)


def test_a_cursor_keeps_the_instant_whatever_the_zone_of_the_row_time():
    berlin = datetime(2024, 3, 1, 13, tzinfo=UTC).astimezone(ZoneInfo("Europe/Berlin"))
    back = resumed(REQUEST, PageCursor(0, (berlin, 3)))
    assert back.after == (datetime(2024, 3, 1, 13, tzinfo=UTC), 3)


def test_the_cursor_text_is_url_safe():
    text = encode_cursor(REQUEST, PageCursor(0, (START, 2**62)))
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@pytest.mark.parametrize("change", [
    {"metrics": ("mem",)},
    {"start": START + timedelta(seconds=1)},
    {"end": START + timedelta(days=2)},
    {"descending": True},
    {"tags": {"host": "a"}},
    {"multi": True},  # the same name asked for as a list: rows differ (they name the metric)
])
def test_a_cursor_from_another_query_is_refused_naming_cursor(change):
    with pytest.raises(InvalidInput, match="different query") as caught:
        resumed(replace(REQUEST, **change), PageCursor(0, (START, 1)), issued_by=REQUEST)
    assert field_of(caught) == ["cursor"]


@pytest.mark.parametrize("change", [
    {"limit": 3}, {"format": "csv"}, {"timezone": "Europe/Berlin"}, {"tags": {}},
])
def test_a_cursor_survives_changes_that_do_not_move_rows(change):
    cursor = PageCursor(0, (START, 1))
    assert resumed(replace(REQUEST, **change), cursor, issued_by=REQUEST) == cursor


def test_the_fingerprint_is_the_one_earlier_versions_issued():
    # A client paging through an upgrade keeps its cursor: the basis is spelled as before.
    basis = orjson.dumps(["cpu", None, None, REQUEST.start, REQUEST.end, None],
                         option=orjson.OPT_SORT_KEYS)
    assert fingerprint(REQUEST) == hashlib.sha256(basis).hexdigest()[:16]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@pytest.mark.parametrize("text", [
    "garbage", "!!!!", b64(b"{}"), b64(b"[1, 2]"), b64(b"123"), b64(b"\xff\xfe"),
    b64(b'{"m": 0, "t": "yesterday", "s": 1, "q": "0"}'),
    b64(b'{"m": 0, "t": "2024-03-10T00:00:00+00:00", "s": "one", "q": "0"}'),
    b64(b'{"m": 1, "t": null, "s": null, "q": "0"}'),  # a second metric this query lacks
    b64(b'{"m": -1, "t": null, "s": null, "q": "0"}'),
])
def test_text_this_service_did_not_issue_is_refused_naming_cursor(text):
    with pytest.raises(InvalidInput, match="not a cursor") as caught:
        decode_cursor(replace(REQUEST, cursor=text))
    assert field_of(caught) == ["cursor"]
