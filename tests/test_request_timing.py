"""A request is timed once: the access log and the latency histogram report the same duration."""


from prometheus_client import REGISTRY

LATENCY_SUM = "tsapi_http_request_duration_seconds_sum"


def test_the_access_log_and_the_latency_histogram_agree_on_a_request(client, log_lines):
    labels = {"endpoint": "/metrics", "method": "GET"}
    before = REGISTRY.get_sample_value(LATENCY_SUM, labels) or 0.0
    assert client.get("/metrics").status_code == 200
    observed = REGISTRY.get_sample_value(LATENCY_SUM, labels) - before
    [line] = [line for line in log_lines() if line["logger"] == "tsapi.access"]
    assert line["duration_ms"] > 0
    # The log rounds to the microsecond; the histogram keeps the figure it was given.
    assert abs(line["duration_ms"] - observed * 1000) <= 0.0005 + 1e-9, (line, observed)
