"""/metrics: which metrics are stored, their details, tag values and latest points."""

import orjson
from flask import Response
from flask.views import MethodView

from tsapi.api.arguments import Blueprint
from tsapi.api.auth import requires
from tsapi.api.openapi import problem_doc
from tsapi.api.ratelimits import counted_with_cache_lookup
from tsapi.api.resources.metrics.schemas import (
    LatestArgs,
    LatestPointSchema,
    MetricDetailSchema,
    MetricListArgs,
    MetricSchema,
    TagValuesSchema,
)
from tsapi.api.runtime import runtime
from tsapi.services.deletion import delete_metric_named
from tsapi.services.discovery import describe_metric, latest, metric_list_body, metric_tag_values

blp = Blueprint("metrics", __name__, description="Discover metrics")

# A metric name may hold "/" (tsapi.api.names says which route reads which name); "//" in
# it is not merged into one "/".
NAME_ROUTE = {"merge_slashes": False}


@blp.route("/metrics")
class Metrics(MethodView):
    @counted_with_cache_lookup
    @requires(blp, "read")
    @blp.arguments(MetricListArgs, location="query")
    @blp.response(200, MetricSchema(many=True))
    def get(self, args):
        """List metrics with their type and first/last point times, sorted by name"""
        body = metric_list_body(runtime(), args.get("prefix"), args.get("limit"))
        return Response(body, mimetype="application/json")


@blp.route("/metrics/<name:name>", **NAME_ROUTE)
class MetricDetail(MethodView):
    @requires(blp, "read")
    @blp.response(200, MetricDetailSchema)
    @problem_doc(blp, 404, "Unknown metric")
    def get(self, name):
        """One metric: type, first/last seen, exact point count, series count, tag keys"""
        return describe_metric(runtime(), name)


@blp.route("/metrics/<name:name>/describe", **NAME_ROUTE)
class MetricDescription(MethodView):
    @requires(blp, "read")
    @blp.response(200, MetricDetailSchema)
    @problem_doc(blp, 404, "Unknown metric")
    def get(self, name):
        """The same as GET /metrics/{name}, for a name ending in /latest or /tags/{key}"""
        return describe_metric(runtime(), name)


@blp.route("/metrics/<name:name>/tags/<string:key>", **NAME_ROUTE)
class MetricTagValues(MethodView):
    @requires(blp, "read")
    @blp.response(200, TagValuesSchema)
    @problem_doc(blp, 404, "Unknown metric")
    def get(self, name, key):
        """The values a tag takes in a metric's series"""
        return metric_tag_values(runtime(), name, key)


@blp.route("/metrics/<name:name>/latest", **NAME_ROUTE)
class MetricLatest(MethodView):
    @requires(blp, "read")
    @blp.arguments(LatestArgs, location="query")
    @blp.response(200, LatestPointSchema(many=True))
    @problem_doc(blp, 404, "Unknown metric")
    def get(self, args, name):
        """The latest point of each series of a metric (optionally filtered by tags)"""
        tags = dict(item.split("=", 1) for item in args.get("tag", []))
        return Response(orjson.dumps(latest(runtime(), name, tags)), mimetype="application/json")


@blp.route("/metrics/<name:name>", **NAME_ROUTE)
class MetricDeletion(MethodView):
    @requires(blp, "admin")
    @blp.response(204)
    @problem_doc(blp, 404, "Unknown metric")
    def delete(self, name):
        """Delete a metric with all its series and points (204; 404 if unknown)"""
        delete_metric_named(runtime(), name)
