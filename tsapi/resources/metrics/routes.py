"""GET /metrics: the metrics stored, cached until ingest changes them."""

import orjson
from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from tsapi.cache import CATALOG, response_cache
from tsapi.resources.metrics.schemas import MetricSchema
from tsapi.store import database
from tsapi.store.catalog import list_metrics

blp = Blueprint("metrics", __name__, description="Discover metrics")


@blp.route("/metrics")
class Metrics(MethodView):
    @blp.response(200, MetricSchema(many=True))
    def get(self):
        """List every metric with its type and first/last point times, sorted by name"""
        cache = response_cache()
        generation = cache.generations([CATALOG])
        key = f"metrics:list:{generation[0]}" if generation is not None else None
        body = cache.get(key) if key else None
        if body is None:
            with database().engine.connect() as conn:
                body = orjson.dumps(list_metrics(conn))
            if key:
                cache.set(key, body)
        return Response(body, mimetype="application/json")
