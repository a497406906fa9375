"""InfluxQL regular expressions run in time linear in the text they search, whatever their
shape: a pattern of a few stars over long tag values must not stall a worker."""

from __future__ import annotations

from helpers import ingest

from tsapi.formats.influxql.regex import compile_regex

# Eight stars pass the pattern's shape checks; a backtracking engine tries every way of
# splitting 1,024 characters among them (about 10^20 steps) before it gives up on the `x`.
STARS = ".*" * 8 + "x"
LONG_VALUE = "a" * 1024


def test_a_pattern_of_many_stars_over_a_long_value_finds_no_match():
    assert compile_regex(STARS).search(LONG_VALUE) is None
    assert compile_regex(STARS).search(LONG_VALUE + "x") is not None


def test_a_tag_filter_of_many_stars_over_long_tag_values_answers(client):
    ingest(client, [{"time": "2020-07-12T00:00:00Z", "metric": "cpu.usage", "value": 1.0,
                     "tags": {"host": LONG_VALUE}}])
    response = client.get("/query", query_string={
        "q": f'SELECT "usage" FROM "cpu" WHERE "host" =~ /{STARS}/'})
    assert response.status_code == 200
    assert "series" not in response.get_json()["results"][0]
    response = client.get("/query", query_string={
        "q": f'SHOW TAG VALUES FROM "cpu" WITH KEY = "host" WHERE "host" =~ /{STARS}/'})
    assert response.status_code == 200
    assert "series" not in response.get_json()["results"][0]
