"""A small typed Python client for a tsapi server (stdlib urllib and orjson only).

    client = Client("http://127.0.0.1:8000")
    client.ingest([{"time": datetime.now(UTC), "metric": "temp", "value": 21.5}])
    rows = client.query("temp", start, end, aggregation="avg", interval="1h")
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    import argparse

    import pandas

DEFAULT_URL = "http://127.0.0.1:8000"


class ApiError(Exception):
    """An error answer (its RFC 9457 problem details) or an unreachable server (status None)."""

    def __init__(self, detail: str, status: int | None = None, errors: Any = None,
                 problem: Mapping[str, Any] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.errors = errors
        self.problem = dict(problem or {})

    @property
    def title(self) -> str | None:
        return self.problem.get("title")

    def __str__(self) -> str:
        text = f"HTTP {self.status}: {self.detail}" if self.status else self.detail
        if self.errors:
            text += "\n" + orjson.dumps(self.errors, option=orjson.OPT_INDENT_2).decode()
        return text


@dataclass(frozen=True)
class Point:
    """One row of a query: a bucket's start or a raw point's time, and its value."""

    time: datetime
    value: float | str | None


class Client:
    """Calls one tsapi server; each method returns decoded data or raises ApiError."""

    def __init__(self, url: str = DEFAULT_URL, api_key: str | None = None,
                 timeout: float = 60.0):
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    def ingest(self, points: Iterable[Mapping[str, Any]] | bytes) -> int:
        """Store points ({time, metric, value, tags?}; times may be datetimes), all or
        nothing; returns how many were stored. Bytes are sent as an encoded JSON body."""
        body = points if isinstance(points, bytes) else orjson.dumps({"data": list(points)})
        doc = self.request("POST", "/ingest", body)
        count = doc.get("ingested_count") if isinstance(doc, dict) else None
        if not isinstance(count, int):
            raise ApiError(f"unexpected ingest answer: {str(doc)[:200]}")
        return count

    def query(self, metric: str, start: datetime | str, end: datetime | str, *,
              aggregation: str | None = None, interval: str | None = None,
              **options: Any) -> list[dict[str, Any]]:
        """Rows of POST /query: raw points, or one per bucket with an aggregation. Further
        request members (the server's newer query options) pass through `options`."""
        body: dict[str, Any] = {"metric": metric, "start_time": _time(start),
                                "end_time": _time(end), **options}
        if aggregation is not None:
            body["aggregation"] = aggregation
        if interval is not None:
            body["interval"] = interval
        return _rows(self.request("POST", "/query", orjson.dumps(body)))

    def query_points(self, metric: str, start: datetime | str, end: datetime | str,
                     **kwargs: Any) -> list[Point]:
        """`query` as Point dataclasses with aware datetimes."""
        return [Point(datetime.fromisoformat(row["time"]), row.get("value"))
                for row in self.query(metric, start, end, **kwargs)]

    def query_df(self, metric: str, start: datetime | str, end: datetime | str,
                 **kwargs: Any) -> pandas.DataFrame:
        """`query` as a pandas DataFrame indexed by UTC time (pandas must be installed)."""
        try:
            import pandas
        except ImportError:
            raise ImportError("query_df needs pandas: pip install pandas") from None
        frame = pandas.DataFrame(self.query(metric, start, end, **kwargs),
                                 columns=["time", "value"])
        frame["time"] = pandas.to_datetime(frame["time"], utc=True, format="ISO8601")
        return frame.set_index("time")

    def metrics(self) -> list[dict[str, Any]]:
        """Every stored metric: name, value_type, first_seen, last_seen."""
        return _rows(self.request("GET", "/metrics"), "metrics")

    def request(self, method: str, path: str, body: bytes | None = None) -> Any:
        """One call with a JSON body (already encoded); the decoded JSON answer, or None."""
        url = self.url + path
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(url, data=body, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise _problem(exc) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(f"cannot reach {url}: {reason}") from None
        if not raw:
            return None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ApiError(f"{method} {url} returned non-JSON: {raw[:200]!r}") from None


def _time(value: datetime | str) -> str:
    return value.isoformat() if isinstance(value, datetime) else value


def _rows(doc: Any, *keys: str) -> list[dict[str, Any]]:
    """The list in an answer that is either a bare list or wrapped under "data" (or keys)."""
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        for key in ("data", *keys):
            if isinstance(doc.get(key), list):
                return doc[key]
    raise ApiError(f"unexpected response shape: {str(doc)[:200]}")


def _problem(exc: urllib.error.HTTPError) -> ApiError:
    """An error answer, ideally RFC 9457 problem details, as an ApiError."""
    try:
        raw = exc.read()
    except OSError:
        raw = b""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, dict):
        detail = doc.get("detail") or doc.get("title") or doc.get("message") or exc.reason
        return ApiError(str(detail), exc.code, doc.get("errors"), doc)
    text = raw.decode("utf-8", "replace").strip()[:300] or str(exc.reason)
    return ApiError(text, exc.code)


def add_server_arguments(parser: argparse.ArgumentParser, timeout: float = 60.0) -> None:
    """--url, --api-key and --timeout, for command-line tools built on this client."""
    parser.add_argument("--url", default=DEFAULT_URL,
                        help="tsapi base URL (default: %(default)s)")
    parser.add_argument("--api-key", default=os.environ.get("TSAPI_API_KEY"),
                        help="sent as 'Authorization: Bearer <key>' (default: $TSAPI_API_KEY)")
    parser.add_argument("--timeout", type=float, default=timeout,
                        help="seconds to wait for each request (default: %(default)s)")
