"""POST /query: read points back, raw or aggregated into time buckets."""

from flask import Response, request
from flask.views import MethodView

from tsapi.api.arguments import Blueprint
from tsapi.api.auth import requires
from tsapi.api.openapi import problem_doc
from tsapi.api.resources.query.schemas import QueryRequestSchema, QueryRowSchema
from tsapi.api.runtime import runtime
from tsapi.formats.rendering import FORMAT_FOR_ACCEPT, MIMETYPES, Rendered
from tsapi.services.query import QueryRequest, run_query

blp = Blueprint("query", __name__, description="Read points")


def requested_format(query: QueryRequest) -> str:
    if query.format:
        return query.format
    best = request.accept_mimetypes.best_match(list(FORMAT_FOR_ACCEPT), default=None)
    return FORMAT_FOR_ACCEPT.get(best, "json") if best else "json"


@blp.route("/query")
class Query(MethodView):
    @requires(blp, "read")
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
