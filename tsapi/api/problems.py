"""One error format for the whole API: RFC 9457 problem details, produced in one place."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import psycopg2
import psycopg2.errors
from flask import Flask, Response, request
from gunicorn.http.errors import NoMoreData, ParseException
from marshmallow.exceptions import SCHEMA
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException

from tsapi.api.influxql import influx_error, is_influxql_request
from tsapi.errors import (
    BadRequest,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    ResultOutOfRange,
    TsapiError,
    UnsupportedMediaType,
    field_error,
)
from tsapi.formats import problem_json
from tsapi.store.engine import numeric_overflow

log = logging.getLogger(__name__)

PROBLEM_MIMETYPE = "application/problem+json"
QUERY_CANCELED = "57014"  # statement_timeout fired
# SQLSTATE classes that say the database cannot serve now, and a retry may succeed: connection
# (08), insufficient resources (53), operator intervention (57), system error (58), transaction
# rollback (40: serialization, deadlock), object not in prerequisite state (55: lock not
# available). Anything else (54, program limits such as "stack depth limit exceeded") is not
# about availability: a 503 with Retry-After would make clients retry it forever.
UNAVAILABLE_CLASSES = frozenset({"08", "53", "57", "58", "40", "55"})
# A character the database's encoding cannot hold (a LATIN1 database, say): the input's, so a
# 4xx. COPY raises it from the raw cursor, the rest through SQLAlchemy.
UNTRANSLATABLE_CHARACTER = "22P05"


# Domain errors -> HTTP status: the one table. A subclass not listed takes its base's status.
STATUS_OF: dict[type[TsapiError], int] = {
    BadRequest: 400,
    InvalidInput: 422,
    NotFound: 404,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
}
# What InfluxDB calls each status in its error bodies' `code`, which its clients display.
INFLUX_CODES = {400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not found",
                413: "request too large", 415: "unsupported media type",
                422: "unprocessable entity", 429: "too many requests", 503: "unavailable"}
INFLUX_BLUEPRINT = "influx"


class HttpError(TsapiError):
    """An error only the HTTP layer can raise (auth): it names its own status and headers."""

    status = 400

    def __init__(self, detail: str, *, headers: Mapping[str, str] | None = None, **kwargs: Any):
        super().__init__(detail, **kwargs)
        self.headers = dict(headers or {})


def status_of(exc: TsapiError) -> int:
    if isinstance(exc, HttpError):
        return exc.status
    for cls in type(exc).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return 400


def problem_response(
    status: int,
    detail: str | None = None,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
    members: Mapping[str, Any] | None = None,
) -> Response:
    phrase = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": phrase,
        "status": status,
        "detail": detail or phrase,
    }
    if errors:
        body["errors"] = errors
    for key, value in (members or {}).items():
        body.setdefault(key, value)
    response = Response(problem_json.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE)
    response.headers.update(headers or {})
    return response


def flatten_messages(messages: Any, path: str = "") -> list[dict[str, Any]]:
    """Turn marshmallow's nested {field: [messages]} into a flat list of field errors."""
    if isinstance(messages, Mapping):
        out = []
        for key, value in messages.items():
            if key == SCHEMA:  # errors of the object as a whole (not of one field)
                child = path
            elif isinstance(key, int):
                child = f"{path}[{key}]"
            elif path:
                child = f"{path}.{key}"
            else:
                child = str(key)
            out.extend(flatten_messages(value, child))
        return out
    if isinstance(messages, list | tuple) and messages and all(
        isinstance(m, str) for m in messages
    ):
        return [field_error(path or "body", m) for m in messages]
    return [field_error(path or "body", str(messages))]


def _summary(errors: list[dict[str, Any]]) -> str:
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{first['field']}: {first['message']}{more}"


def influx_members(status: int, detail: str) -> dict[str, str]:
    """What InfluxDB's write clients read from an error body, on their endpoints: `code` and
    `message` (InfluxDB 2: influxdb-client, Telegraf's influxdb_v2 output), `error` (InfluxDB
    1: Telegraf's influxdb output logs it with the points it drops)."""
    if request.blueprint != INFLUX_BLUEPRINT:
        return {}
    return {"code": INFLUX_CODES.get(status, "internal error"), "message": detail,
            "error": detail}


def http_exception_response(exc: HTTPException) -> Response:
    """Render werkzeug/webargs HTTP errors; webargs puts field messages in exc.data."""
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    messages = data.get("messages")
    if messages:
        # webargs nests messages under the location ("json", "query"): callers name fields.
        if isinstance(messages, Mapping) and len(messages) == 1:
            messages = next(iter(messages.values()))
        errors = flatten_messages(messages)
        detail = f"Invalid request: {_summary(errors)}"
        return problem_response(status, detail, errors=errors,
                                members=influx_members(status, detail))
    detail = exc.description if exc.description else None
    headers = {k: v for k, v in exc.get_headers() if k.lower() not in {"content-type"}}
    return problem_response(status, detail, headers=headers)


def _short(exc: Exception) -> str:
    """The driver's message without the statement and its parameters, which for a batch can
    be megabytes: a failure must not flood the log."""
    return str(getattr(exc, "orig", None) or exc)[:2000]


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(TsapiError)
    def _domain_error(exc: TsapiError) -> Response:
        status = status_of(exc)
        if is_influxql_request():
            # InfluxDB 1.x clients read {"error": ...} (auth, limits, bad parameters).
            return influx_error(status, exc.detail, getattr(exc, "headers", None))
        members = {**exc.members, **influx_members(status, exc.detail)}
        return problem_response(status, exc.detail, errors=exc.errors,
                                headers=getattr(exc, "headers", None), members=members)

    # Under gunicorn a chunked body is parsed as the view reads it: a bad chunk size, a missing
    # terminator or a body cut short surfaces here, from inside the view, not in gunicorn.
    @app.errorhandler(ParseException)
    @app.errorhandler(NoMoreData)
    def _broken_framing(exc: Exception) -> Response:
        message = "is not framed as its headers say (chunk sizes, terminators, length)"
        return problem_response(400, f"The request body {message}; nothing was stored.",
                                errors=[field_error("body", message)])

    @app.errorhandler(OperationalError)
    @app.errorhandler(PoolTimeoutError)
    @app.errorhandler(psycopg2.OperationalError)  # from COPY, which runs on the raw cursor
    def _database_unavailable(exc: Exception) -> Response:
        pgcode = getattr(getattr(exc, "orig", None) or exc, "pgcode", None)
        if pgcode and pgcode[:2] not in UNAVAILABLE_CLASSES:
            log.error("database error %s: %s", pgcode, _short(exc))
            return problem_response(500, "Internal database error")
        if pgcode == QUERY_CANCELED:
            return problem_response(
                503, "The query took longer than the server's time limit "
                "(TSAPI_DB_STATEMENT_TIMEOUT_MS); narrow the range or aggregate over longer "
                "intervals.", headers={"Retry-After": "5"})
        log.warning("database unavailable: %s", _short(exc))
        return problem_response(
            503, "The database is unavailable; retry shortly.", headers={"Retry-After": "5"}
        )

    @app.errorhandler(RedisError)
    def _cache_unavailable(exc: RedisError) -> Response:
        # Only cache administration lets Redis errors through; data endpoints skip the cache.
        log.warning("redis unavailable: %s", exc)
        return problem_response(
            503, "The cache (Redis) is unavailable; retry shortly.", headers={"Retry-After": "5"}
        )

    @app.errorhandler(psycopg2.errors.UntranslatableCharacter)
    def _unstorable_character(exc: Exception) -> Response:
        return problem_response(
            422, "A string (a value, a tag, a metric name) holds a character the database's "
            "encoding cannot store; nothing was stored.")

    @app.errorhandler(DBAPIError)
    def _database_error(exc: DBAPIError) -> Response:
        if exc.connection_invalidated:
            return _database_unavailable(exc)
        code = getattr(exc.orig, "pgcode", None)
        if code == UNTRANSLATABLE_CHARACTER:
            return _unstorable_character(exc)
        if numeric_overflow(exc):  # outside a query's answer (an export as it streams)
            return problem_response(422, ResultOutOfRange().detail)
        log.exception("database error")
        return problem_response(500, "Internal database error")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            return http_exception_response(exc)
        log.exception("unhandled error")
        return problem_response(500, "Internal server error")
