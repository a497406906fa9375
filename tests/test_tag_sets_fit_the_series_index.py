"""A series' tag set is one entry of the series index, which holds at most 2,704 bytes: a tag
set too large for it is refused by name before any work, on the small and the large (COPY)
batch path alike and from line protocol, instead of failing in the database (a 500)."""

from __future__ import annotations

import random

import pytest
from helpers import assert_problem, error_fields, ingest, point, stored_metrics, stored_series

from tsapi.formats.validation import MAX_TAG_SET_BYTES, MAX_TAGS
from tsapi.store.small_batch import SMALL_BATCH

T = "2024-03-10T00:00:00Z"


def incompressible(n: int, seed: int, alphabet: str) -> str:
    """n characters the index cannot compress its way around."""
    return "".join(random.Random(seed).choices(alphabet, k=n))


LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
FOUR_BYTES = "".join(chr(c) for c in range(0x10000, 0x10400))  # 4 bytes each in UTF-8

# Each tag within its own limits (1,024 characters a value, 128 a key, 32 tags), the set not.
TOO_LARGE = {
    "one value of 4-byte characters": {"k": incompressible(700, 1, FOUR_BYTES)},
    "32 tags": {incompressible(128, i, LETTERS): incompressible(60, 100 + i, LETTERS)
                for i in range(MAX_TAGS)},
}


def fillers(n: int) -> list[dict]:
    return [point(f"2024-03-11T00:{i // 60 % 60:02d}:{i % 60:02d}Z", "filler", 1.0)
            for i in range(n)]


@pytest.mark.parametrize("tags", list(TOO_LARGE.values()), ids=list(TOO_LARGE))
def test_a_tag_set_too_large_to_index_is_refused_by_name_on_both_batch_paths(make_app, tags):
    client = make_app().test_client()
    bad = {"time": T, "metric": "cpu", "value": 1.0, "tags": tags}
    small = assert_problem(client.post("/ingest", json={"data": [bad]}), 422)
    large = assert_problem(client.post("/ingest", json={"data": [*fillers(SMALL_BATCH), bad]}),
                           422)
    assert error_fields(small) == ["data[0].tags"]
    assert error_fields(large) == [f"data[{SMALL_BATCH}].tags"]
    assert small["errors"][0]["message"] == large["errors"][0]["message"]
    assert stored_metrics(client) == []


def test_the_largest_tag_set_allowed_is_stored_on_both_batch_paths(make_app):
    app = make_app()
    client = app.test_client()
    keys = [f"k{i:02d}" for i in range(MAX_TAGS)]
    each = (MAX_TAG_SET_BYTES - sum(map(len, keys))) // MAX_TAGS
    tags = {key: incompressible(each, i, LETTERS) for i, key in enumerate(keys)}
    last = next(reversed(tags))
    tags[last] += "x" * (MAX_TAG_SET_BYTES - sum(len(k) + len(v) for k, v in tags.items()))
    ingest(client, [point(T, "small", 1.0, **tags)])
    ingest(client, [*fillers(SMALL_BATCH), point(T, "large", 1.0, **tags)])
    stored = {name for name, pairs in stored_series(app) if pairs == tuple(sorted(tags.items()))}
    assert stored == {"small", "large"}


def test_a_line_whose_tag_set_is_too_large_to_index_is_a_bad_line(make_app):
    client = make_app().test_client()
    value = TOO_LARGE["one value of 4-byte characters"]["k"]
    response = client.post("/api/v2/write?bucket=b&precision=s",
                           data=f"cpu,k={value} v=1 1710028800\n".encode(),
                           content_type="text/plain; charset=utf-8")
    problem = assert_problem(response, 400)
    assert error_fields(problem) == ["line 1"]
    assert "tag set" in problem["errors"][0]["message"]
    assert stored_metrics(client) == []
