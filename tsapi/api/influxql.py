"""Which /query requests speak InfluxDB 1.x's dialect, and its error body.

`POST /query` with a JSON body is tsapi's own query; `GET /query`, and `POST /query` with a
form body, with none, or with `q` in the URL, are InfluxQL (what Grafana, Chronograf and
InfluxDB's clients send).
"""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from tsapi.errors import PayloadTooLarge, field_error
from tsapi.formats import problem_json

FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
QUERY_PATH = "/query"
# Room for the longest statement (16,384 characters, tsapi.formats.influxql.tokens), each a
# 4-byte UTF-8 character percent-encoded (12 bytes), and the other parameters.
MAX_FORM_BYTES = 256 * 1024


def is_influxql_request() -> bool:
    if request.path != QUERY_PATH:
        return False
    if request.method in ("GET", "HEAD"):
        return True
    if request.method != "POST":
        return False
    if request.mimetype in FORM_TYPES or "q" in request.args:
        # InfluxDB's own client POSTs `q` in the URL with `Content-Type: application/json`
        # and no body; tsapi's JSON query never has URL parameters.
        return True
    return not request.mimetype and not request.content_length


def influx_error(status: int, message: str, headers=None) -> Response:
    response = Response(problem_json.dumps({"error": message}), status=status,
                        mimetype="application/json")
    response.headers.update(headers or {})
    return response


def influxql_credential() -> str | None:
    """The `p` parameter: InfluxDB 1.x clients may send the password (a tsapi key) so."""
    if not is_influxql_request():
        return None
    return request.values.get("p") or None


def _form_too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"request body too large: an InfluxQL form body (q, db, epoch, ...) is at most "
        f"{limit} bytes", errors=[field_error("body", f"is over {limit} bytes")])


def _bound_form() -> None:
    """Werkzeug reads a form body whole into memory the first time anything asks for a
    parameter (auth asks for `p`): refuse a long one by its Content-Length, and read a chunked
    one only up to the limit, before that."""
    if request.mimetype not in FORM_TYPES or not is_influxql_request():
        return
    # Only ever tighter than the limit on every body (TSAPI_MAX_BODY_BYTES), never looser.
    limit = min(MAX_FORM_BYTES, request.max_content_length or MAX_FORM_BYTES)
    if (request.content_length or 0) > limit:
        raise _form_too_large(limit)
    # Werkzeug's own limit on a chunked body ends the read at the limit without a word (the
    # form would be parsed from its first bytes): one byte more tells a longer body apart.
    request.max_content_length = limit + 1
    try:
        body = request.get_data(cache=True)  # the form is parsed from these bytes
    except RequestEntityTooLarge:
        raise _form_too_large(limit) from None
    if len(body) > limit:
        raise _form_too_large(limit)
    try:
        _ = request.form  # parsed here, so that werkzeug's refusal reads as InfluxDB's errors do
    except RequestEntityTooLarge:
        parts = request.max_form_parts
        raise PayloadTooLarge(
            f"request body too large: an InfluxQL form body has at most {parts} parts",
            errors=[field_error("body", f"has over {parts} parts")]) from None


def init_form_limit(app: Flask) -> None:
    """Register before auth, the first hook to read a request's parameters."""
    app.before_request(_bound_form)
