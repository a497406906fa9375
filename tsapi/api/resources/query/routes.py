"""POST /query: read points back, raw or aggregated into time buckets; and InfluxDB 1.x's
InfluxQL /query (GET, or POST with a form body) for Grafana and InfluxDB clients."""

from flask import Response, request
from flask.views import MethodView

from tsapi.api.arguments import Blueprint
from tsapi.api.auth import requires
from tsapi.api.openapi import problem_doc
from tsapi.api.ratelimits import counted_with_cache_lookup
from tsapi.api.resources.query.influxql import influxql_response, influxql_unless_json
from tsapi.api.resources.query.schemas import (
    InfluxQLErrorSchema,
    QueryRequestSchema,
    QueryRowSchema,
)
from tsapi.api.runtime import runtime
from tsapi.formats.influxql.results import EPOCH_UNITS
from tsapi.formats.rendering import FORMAT_FOR_ACCEPT, MIMETYPES, Rendered
from tsapi.services.query import QueryRequest, run_query

blp = Blueprint("query", __name__, description="Read points")


def requested_format(query: QueryRequest) -> str:
    if query.format:
        return query.format
    best = request.accept_mimetypes.best_match(list(FORMAT_FOR_ACCEPT), default=None)
    return FORMAT_FOR_ACCEPT.get(best, "json") if best else "json"


_INFLUXQL_PARAMS = [
    {"name": "q", "in": "query", "required": True, "schema": {"type": "string"},
     "description": "InfluxQL statements separated by `;`",
     "example": 'SELECT mean("temp") FROM "weather" WHERE time >= now() - 6h '
                "GROUP BY time(10m) fill(null)"},
    {"name": "db", "in": "query", "schema": {"type": "string"},
     "description": "Accepted and echoed by SHOW DATABASES; tsapi has one database"},
    {"name": "epoch", "in": "query",
     "schema": {"type": "string", "enum": sorted(EPOCH_UNITS)},
     "description": "Times as integers in this unit; RFC 3339 strings without it"},
    {"name": "pretty", "in": "query", "schema": {"type": "boolean"}},
    {"name": "chunked", "in": "query", "schema": {"type": "boolean"},
     "description": "Accepted and ignored: the answer comes in one piece"},
]


@blp.route("/query")
class Query(MethodView):
    @requires(blp, "read")
    @blp.doc(parameters=_INFLUXQL_PARAMS, responses={"200": {
        "description": "InfluxDB 1.x results: `{\"results\": [{\"statement_id\", "
                       "\"series\": [{\"name\", \"tags\", \"columns\", \"values\"}]}]}`",
        "content": {"application/json": {"schema": {"type": "object"}}}}})
    @blp.alt_response(400, schema=InfluxQLErrorSchema, content_type="application/json",
                      description="No `q`, a bad `epoch`, or a syntax error (InfluxDB's "
                      "`{\"error\"}` body; a statement's own error is in its result)")
    def get(self):
        """InfluxQL query (InfluxDB 1.x API), for Grafana and InfluxDB clients

        SELECT with mean, median, count, sum, min, max, first, last, spread, stddev,
        percentile, distinct and derivatives, WHERE time and tag conditions, GROUP BY
        time() and tags, fill(); SHOW DATABASES, MEASUREMENTS, FIELD KEYS, TAG KEYS, TAG
        VALUES, RETENTION POLICIES, SERIES. POST with a form body does the same.
        """
        return influxql_response()

    @counted_with_cache_lookup
    @requires(blp, "read")
    @influxql_unless_json
    @blp.arguments(QueryRequestSchema)
    @blp.response(200, QueryRowSchema(many=True))
    @problem_doc(blp, 400, "A numeric aggregation on a string metric")
    @problem_doc(blp, 404, "Unknown metric")
    @problem_doc(blp, 422, "Invalid request: the field and the problem")
    def post(self, query: QueryRequest):
        """Read points in [start_time, end_time)

        Without aggregation: the raw points, ordered by time (paged with limit/cursor).
        With an aggregation and an interval: one row per bucket (per group with group_by);
        without an interval: one row for the range. JSON, CSV or NDJSON.
        """
        fmt = requested_format(query)
        result = run_query(runtime(), query, fmt)
        if isinstance(result, Rendered):
            return Response(result.body, mimetype=result.mimetype, headers=result.headers)
        # A streamed export: rows leave as the server-side cursor yields them.
        return Response(result, mimetype=MIMETYPES[fmt])
