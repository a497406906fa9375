"""InfluxDB 1.x's `GET|POST /query?db=&q=&epoch=`: parameters in, InfluxDB's JSON out."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

import marshmallow as ma
import orjson
from flask import Response, request

from tsapi.api.influxql import influx_error, is_influxql_request
from tsapi.api.problems import flatten_messages
from tsapi.api.resources.query.schemas import QueryRequestSchema
from tsapi.api.resources.status.routes import INFLUXDB_VERSION
from tsapi.api.runtime import runtime
from tsapi.errors import InvalidInput
from tsapi.formats.influxql import ParseError
from tsapi.formats.influxql.results import EPOCH_UNITS
from tsapi.services.influxql import run_influxql
from tsapi.services.redis_riders import settle

_SCHEMA = QueryRequestSchema()
TRUE = frozenset({"true", "1", "t", "yes"})


def load_query(document: dict) -> dict:
    """A /query document through the /query schema, as if a client had POSTed it."""
    try:
        return _SCHEMA.load(document)
    except ma.ValidationError as exc:
        errors = flatten_messages(exc.messages)
        first = errors[0]
        raise InvalidInput(f"{first['field']}: {first['message']}", errors=errors) from None


def influxql_response() -> Response:
    params = request.values
    text = params.get("q")
    if not text:
        return influx_error(400, 'missing required parameter "q"')
    epoch = params.get("epoch") or None
    if epoch is not None and epoch not in EPOCH_UNITS:
        return influx_error(400, f"invalid epoch '{epoch[:16]}': use ns, u, µ, ms, s, m or h")
    try:
        body = run_influxql(runtime(), text, database=params.get("db"), epoch=epoch,
                            load=load_query)
    except ParseError as exc:
        return influx_error(400, f"error parsing query: {exc}")
    pretty = (params.get("pretty") or "").lower() in TRUE
    option = orjson.OPT_INDENT_2 if pretty else 0
    return Response(orjson.dumps(body, option=option), mimetype="application/json",
                    headers={"X-Influxdb-Version": INFLUXDB_VERSION})


def influxql_unless_json(view: Callable) -> Callable:
    """POST /query with a form body or none is InfluxQL; with JSON, tsapi's own query."""

    @wraps(view)
    def dispatch(*args, **kwargs):
        if is_influxql_request():
            # No cache lookup on this path: the rate limit's count goes alone, before the work.
            settle()
            return influxql_response()
        return view(*args, **kwargs)

    return dispatch
