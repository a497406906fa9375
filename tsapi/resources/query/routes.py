"""POST /query: read points back, raw or aggregated into time buckets."""

import orjson
from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from tsapi.openapi import problem_doc
from tsapi.query import run_query
from tsapi.resources.query.schemas import QueryRequestSchema, QueryRowSchema

blp = Blueprint("query", __name__, description="Read points")


@blp.route("/query")
class Query(MethodView):
    @blp.arguments(QueryRequestSchema)
    @blp.response(200, QueryRowSchema(many=True))
    @problem_doc(blp, 400, "A numeric aggregation on a string metric")
    @problem_doc(blp, 404, "Unknown metric")
    @problem_doc(blp, 422, "Invalid request: the field and the problem")
    def post(self, args):
        """Read a metric's points in [start_time, end_time)

        Without aggregation: the raw points, ordered by time. With an aggregation and an
        interval: one row per non-empty bucket; without an interval: one row for the range.
        """
        # Serialized with orjson, bypassing marshmallow: results run to many thousand rows.
        return Response(orjson.dumps(run_query(args)), mimetype="application/json")
