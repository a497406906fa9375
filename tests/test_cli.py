"""The tsapi command: migrations and sample data."""

from helpers import query


def test_load_sample_stores_seven_metrics_per_row(runner, client):
    result = runner.invoke(args=["load-sample", "--max-rows", "300"])
    assert result.exit_code == 0, result.output
    assert "Loaded 2100 points" in result.output
    names = [m["name"] for m in client.get("/metrics").get_json()]
    assert names == sorted([
        "carbon_monoxide", "humidity", "light_status", "liquefied_petroleum_gas",
        "motion_detected", "smoke", "temperature",
    ])
    rows = query(client, metric="temperature", aggregation="count",
                 start_time="2020-01-01T00:00:00Z", end_time="2021-01-01T00:00:00Z")
    assert rows[0]["value"] == 300


def test_load_sample_twice_stores_each_point_once(runner, client):
    for _ in range(2):
        assert runner.invoke(args=["load-sample", "--max-rows", "50"]).exit_code == 0
    rows = query(client, metric="humidity", aggregation="count",
                 start_time="2020-01-01T00:00:00Z", end_time="2021-01-01T00:00:00Z")
    assert rows[0]["value"] == 50


def test_db_upgrade_is_idempotent(runner):
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["db", "current"])
    assert result.exit_code == 0
