"""Prometheus metrics of the service itself, served at GET /internal/metrics.

Under gunicorn every worker is a process of its own: gunicorn.conf.py sets
PROMETHEUS_MULTIPROC_DIR, where prometheus_client keeps each process's values in files that a
scrape of any worker adds up. Without that variable (the development server, tests) the values
live in this process's default registry.
"""

from __future__ import annotations

import os

from flask import Blueprint, Flask, Response, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy.exc import SQLAlchemyError

from tsapi.api.auth import SCOPE_ATTRIBUTE
from tsapi.api.runtime import runtime
from tsapi.api.timing import request_seconds
from tsapi.services.rollups import rollups_status

METRICS_PATH = "/internal/metrics"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter(
    "tsapi_http_requests_total", "HTTP requests answered, by route, method and status",
    ["endpoint", "method", "status"],
)
LATENCY = Histogram(
    "tsapi_http_request_duration_seconds", "Time to answer a request, by route and method",
    ["endpoint", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
# Set from the database by each scrape and each /health: the latest reading wins.
ROLLUP_LAG = Gauge(
    "tsapi_rollup_lag_seconds", "Now minus the rollup level's materialized-until watermark",
    ["level"], multiprocess_mode="mostrecent",
)
ROLLUP_PENDING = Gauge(
    "tsapi_rollup_pending_invalidations", "Logged changes the rollup refresher has not "
    "consumed yet", multiprocess_mode="mostrecent",
)
# Clients choose the method: anything unusual shares one label, so labels stay bounded.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

blp = Blueprint("monitoring", __name__)


@blp.route(METRICS_PATH)
def scrape() -> Response:
    """Prometheus text format; not in the OpenAPI document (it is not part of the API)."""
    rollup_health(runtime())  # the rollup gauges, read now
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


# With TSAPI_AUTH=required a scraper presents an admin key (Prometheus: authorization
# credentials in the scrape config): request counts are operational detail.
setattr(scrape, SCOPE_ATTRIBUTE, "admin")


def init_monitoring(app: Flask) -> None:
    app.register_blueprint(blp)
    app.after_request(_observe)


def _observe(response: Response) -> Response:
    # The route's pattern, not the path: one series per endpoint however many metric names
    # appear in paths; requests that matched no route share one label.
    endpoint = request.url_rule.rule if request.url_rule else "unmatched"
    method = request.method if request.method in _METHODS else "other"
    REQUESTS.labels(endpoint, method, str(response.status_code)).inc()
    seconds = request_seconds()
    if seconds is not None:
        LATENCY.labels(endpoint, method).observe(seconds)
    return response


def rollup_health(rt) -> dict | None:
    """Refresh lag per level and the pending invalidations; None if they cannot be read
    (a database not migrated yet): the service's health does not hang on them."""
    try:
        status = rollups_status(rt)
    except SQLAlchemyError:
        return None
    ROLLUP_PENDING.set(status.pending_invalidations)
    for level, lag in status.lag_seconds.items():
        if lag is not None:
            ROLLUP_LAG.labels(level).set(lag)
    return {
        "levels": {level: {"materialized_until": mark, "lag_seconds": status.lag_seconds[level]}
                   for level, mark in status.watermarks.items()},
        "pending_invalidations": status.pending_invalidations,
        "oldest_pending_seconds": status.oldest_pending_seconds,
    }
