"""A metric holds numbers or strings: one rule, one message, whichever check finds the conflict.

A batch that passes validation is checked by the writer, against the types it locks; a batch
that fails validation is checked read-only beforehand, so one answer lists every problem.
"""

import pytest
from helpers import assert_problem, ingest, point

from tsapi.formats.value_types import NUMBER, STRING, type_conflicts, value_type


@pytest.mark.parametrize(("value", "kind"), [
    (1, NUMBER), (1.5, NUMBER), (-0.0, NUMBER), ("x", STRING), ("", STRING),
    (True, None), (None, None), ([1], None), ({"a": 1}, None),
])
def test_a_value_gives_its_metric_a_type(value, kind):
    assert value_type(value) == kind


def test_a_new_metric_takes_the_type_of_its_first_point():
    types = {"stored": NUMBER}
    errors = type_conflicts([(0, "new", STRING), (1, "stored", STRING), (2, "new", NUMBER),
                             (3, "new", STRING)], types)
    assert [(e["field"], e["message"]) for e in errors] == [
        ("data[1].value", "metric 'stored' holds number values; got a string"),
        ("data[2].value", "metric 'new' holds string values; got a number"),
    ]
    assert types == {"stored": NUMBER, "new": STRING}


def conflicts(client, points) -> list[dict]:
    problem = assert_problem(client.post("/ingest", json={"data": points}), 422)
    return [e for e in problem["errors"] if "holds" in e["message"]]


def test_the_writer_and_the_read_only_check_report_a_conflict_alike(client):
    ingest(client, [point("2024-01-01T00:00:00Z", "temp", 1.0)])
    clash = point("2024-01-01T01:00:00Z", "temp", "warm")
    # Valid otherwise: the writer finds the conflict while it holds the metric's lock.
    by_writer = conflicts(client, [clash])
    # With an invalid point beside it, validation fails first; the conflict is still listed.
    by_check = conflicts(client, [clash, point("not a time", "other", 1.0)])
    assert by_writer == by_check == [{
        "field": "data[0].value", "message": "metric 'temp' holds number values; got a string",
        "index": 0}]
