"""A request is timed once: the access log and the latency histogram report the same duration."""

import io
import json
import logging

from prometheus_client import REGISTRY

from tsapi.api.logs import JsonFormatter

LATENCY_SUM = "tsapi_http_request_duration_seconds_sum"


def test_the_access_log_and_the_latency_histogram_agree_on_a_request(client):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    access = logging.getLogger("tsapi.access")
    labels = {"endpoint": "/metrics", "method": "GET"}
    before = REGISTRY.get_sample_value(LATENCY_SUM, labels) or 0.0
    access.addHandler(handler)
    try:
        assert client.get("/metrics").status_code == 200
    finally:
        access.removeHandler(handler)
    observed = REGISTRY.get_sample_value(LATENCY_SUM, labels) - before
    [line] = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["duration_ms"] > 0
    # The log rounds to the microsecond; the histogram keeps the figure it was given.
    assert abs(line["duration_ms"] - observed * 1000) <= 0.0005 + 1e-9, (line, observed)
