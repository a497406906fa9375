"""Which /query requests speak InfluxDB 1.x's dialect, and its error body.

`POST /query` with a JSON body is tsapi's own query; `GET /query`, and `POST /query` with a
form body, with none, or with `q` in the URL, are InfluxQL (what Grafana, Chronograf and
InfluxDB's clients send).
"""

from __future__ import annotations

import orjson
from flask import Response, request

FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
QUERY_PATH = "/query"


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
    response = Response(orjson.dumps({"error": message}), status=status,
                        mimetype="application/json")
    response.headers.update(headers or {})
    return response


def influxql_credential() -> str | None:
    """The `p` parameter: InfluxDB 1.x clients may send the password (a tsapi key) so."""
    if not is_influxql_request():
        return None
    return request.values.get("p") or None
