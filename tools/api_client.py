"""Tiny JSON-over-HTTP client for the tsapi command-line tools (stdlib urllib + orjson)."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import orjson

DEFAULT_URL = "http://127.0.0.1:8000"


class ApiError(Exception):
    """An HTTP error or unreachable server, carrying the problem-details fields we print."""

    def __init__(self, detail: str, status: int | None = None, errors: Any = None):
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.errors = errors

    def __str__(self) -> str:
        text = f"HTTP {self.status}: {self.detail}" if self.status else self.detail
        if self.errors:
            text += "\n" + orjson.dumps(self.errors, option=orjson.OPT_INDENT_2).decode()
        return text


class ApiClient:
    """Calls one tsapi server; every call returns the decoded JSON body or raises ApiError."""

    def __init__(
        self, base_url: str = DEFAULT_URL, api_key: str | None = None, timeout: float = 60.0
    ):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    def request(self, method: str, path: str, body: Any = None) -> Any:
        url = self.base_url + path
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            # Callers may pass pre-encoded bytes to avoid encoding big batches twice.
            data = body if isinstance(body, bytes) else orjson.dumps(body)
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
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

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)


def _problem(exc: urllib.error.HTTPError) -> ApiError:
    """Turn an HTTP error response (ideally RFC 9457 problem details) into an ApiError."""
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
        return ApiError(str(detail), exc.code, doc.get("errors"))
    text = raw.decode("utf-8", "replace").strip()[:300] or str(exc.reason)
    return ApiError(text, exc.code)


def add_server_arguments(parser, timeout: float = 60.0) -> None:
    """--url, --api-key and --timeout, shared by every tool that talks to a server."""
    parser.add_argument("--url", default=DEFAULT_URL,
                        help="tsapi base URL (default: %(default)s)")
    parser.add_argument("--api-key", default=None,
                        help="sent as 'Authorization: Bearer <key>'")
    parser.add_argument("--timeout", type=float, default=timeout,
                        help="seconds to wait for each request (default: %(default)s)")
