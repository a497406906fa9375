"""GET / and GET /health: what this service is and whether it can work; and InfluxDB 1.x's
GET /ping, which its clients call before anything else."""

import flask
import orjson
from flask import Response, request
from flask.views import MethodView
from sqlalchemy.exc import SQLAlchemyError

from tsapi.api.arguments import Blueprint
from tsapi.api.monitoring import rollup_health
from tsapi.api.resources.status.schemas import HealthSchema, RootSchema
from tsapi.api.runtime import runtime
from tsapi.store.engine import Database, ping
from tsapi.version import __version__

blp = Blueprint("status", __name__, description="Service status")

LINKS = {
    "ingest": "POST /ingest",
    "query": "POST /query",
    "metrics": "GET /metrics",
    "health": "GET /health",
    "cache_info": "GET /cache/info",
    "ui": "GET /ui",
}


@blp.route("/")
class Root(MethodView):
    @blp.response(200, RootSchema)
    def get(self):
        """Name, version, cache status and links"""
        return {
            "message": "Super-Simple Timeseries API Service",
            "version": __version__,
            "redis_status": "connected" if runtime().cache.ping() else "disconnected",
            "docs": "/docs",
            "openapi": "/openapi.json",
            "links": LINKS,
        }


@blp.route("/health")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema, description="The database is unreachable")
    def get(self):
        """Database and cache health, and the storage engine in use"""
        cache = runtime().cache
        body = {"version": __version__}
        if not cache.uses_redis:
            body["redis"] = "not configured"
        else:
            body["redis"] = "healthy" if cache.ping() else "unhealthy"
        db = runtime().db
        body["replica"] = _replica_health(db)
        try:
            ping(db.engine)
            storage = db.storage
        except SQLAlchemyError:
            body.update(status="unhealthy", database="unhealthy")
            return Response(orjson.dumps(body), status=503, mimetype="application/json",
                            headers={"Retry-After": "5"})
        degraded = body["redis"] == "unhealthy" or body["replica"]["status"] in (
            "lagging", "unhealthy")
        body.update(
            status="degraded" if degraded else "healthy",
            database="healthy",
            storage=storage.engine_name,
            timescaledb_version=storage.timescaledb_version,
            hypertable=storage.hypertable,
            postgres_version=storage.postgres_version,
        )
        rollups = rollup_health(runtime())
        if rollups is not None:
            body["rollups"] = rollups
        return body


def _replica_health(db: Database) -> dict:
    if db.replica is None:
        return {"status": "not configured", "lag_seconds": None}
    state = db.replica.state(fresh=True)
    if not state.reachable:
        return {"status": "unhealthy", "lag_seconds": None, "error": state.error or "unknown"}
    lagging = not state.usable(db.replica.max_lag)
    return {"status": "lagging" if lagging else "healthy",
            "lag_seconds": round(state.lag_seconds, 3)}


# What InfluxDB 1.x clients look for in /ping's headers; tsapi speaks its 1.8 API subset.
INFLUXDB_VERSION = "1.8.10-tsapi"


def influx_ping() -> Response:
    """204 with X-Influxdb-Version (200 and a body with ?verbose=true), as InfluxDB answers.

    Registered with Flask's own add_url_rule, so it stays out of the OpenAPI document: it
    belongs to InfluxDB's API, not tsapi's."""
    headers = {"X-Influxdb-Version": INFLUXDB_VERSION, "X-Influxdb-Build": "OSS"}
    if (request.args.get("verbose") or "").lower() in ("true", "1"):
        return Response(orjson.dumps({"version": INFLUXDB_VERSION}), status=200,
                        mimetype="application/json", headers=headers)
    return Response(status=204, headers=headers)


flask.Blueprint.add_url_rule(blp, "/ping", "ping", influx_ping, methods=["GET", "HEAD"])
