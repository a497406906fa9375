"""Prometheus counters of what the use cases do (HTTP metrics live in tsapi.api.monitoring).

prometheus_client keeps these per process, or in PROMETHEUS_MULTIPROC_DIR under gunicorn;
GET /internal/metrics serves them with the HTTP ones.
"""

from prometheus_client import Counter

INGESTED_POINTS = Counter("tsapi_ingested_points_total", "Points stored by /ingest")
REJECTED_POINTS = Counter(
    "tsapi_rejected_points_total", "Points sent to /ingest in batches refused as invalid",
)
CACHE_LOOKUPS = Counter(
    "tsapi_cache_lookups_total", "Response cache lookups, by outcome (hit or miss)", ["outcome"],
)
