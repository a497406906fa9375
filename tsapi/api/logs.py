"""Logging: one JSON object per line on stderr, each request's lines tagged with its id."""

from __future__ import annotations

import logging
import re
import uuid
from datetime import UTC, datetime

import orjson
from flask import Flask, Response, g, has_request_context, request
from gunicorn.glogging import Logger as GunicornBaseLogger

from tsapi.api.timing import request_seconds

REQUEST_ID_HEADER = "X-Request-ID"
# A client's id is echoed and logged: accept only short ids of harmless characters, so no one
# can forge log lines or inject headers through it; anything else gets a fresh id.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+=/-]{1,128}")
# Fields an access line carries beyond the standard ones; given to the logger as `extra`.
ACCESS_FIELDS = ("method", "path", "status", "duration_ms", "endpoint", "client")

access_log = logging.getLogger("tsapi.access")


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON line; also used for gunicorn's own logs (gunicorn.conf.py)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id is None and has_request_context():
            request_id = g.get("request_id")
        if request_id is not None:
            entry["request_id"] = request_id
        for name in ACCESS_FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class GunicornLogger(GunicornBaseLogger):
    """gunicorn's logger (gunicorn.conf.py's logger_class), building no access line when
    there is no access log: with a logconfig_dict (for the JSON lines) gunicorn would format
    one per request, ~30 µs, for a logger that has no handler."""

    def access(self, resp, req, environ, request_time) -> None:
        if self.cfg.accesslog:
            super().access(resp, req, environ, request_time)


def configure_logging(app: Flask) -> None:
    logger = logging.getLogger("tsapi")
    if not logger.handlers:
        handler = logging.StreamHandler()  # stderr
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    # Our handler writes every line; passing them on to the root logger (which gunicorn
    # points at stdout) would print each twice, once not as JSON.
    logger.propagate = False
    logger.setLevel(logging.DEBUG if app.debug else logging.INFO)
    app.before_request(_start_request)
    app.after_request(_finish_request)


def request_id() -> str:
    """This request's id: the client's X-Request-ID if sane, else a fresh one."""
    if "request_id" not in g:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
    return g.request_id


def _start_request() -> None:
    # Returns None: a before_request hook that returns a value would answer the request.
    request_id()


def _finish_request(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = request_id()
    seconds = request_seconds()
    duration_ms = None if seconds is None else round(seconds * 1000, 3)
    rule = request.url_rule
    access_log.info(
        "%s %s %s", request.method, request.path, response.status_code,
        extra={"method": request.method, "path": request.path,
               "status": response.status_code, "duration_ms": duration_ms,
               "endpoint": rule.rule if rule else None,
               # The TCP peer, or behind TSAPI_TRUSTED_PROXIES the address they vouch for.
               "client": request.remote_addr},
    )
    return response
