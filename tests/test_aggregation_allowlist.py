"""The aggregation allowlist: every set, pattern and description is derived from one table."""

import re

import pytest

from tsapi.formats import aggregations
from tsapi.formats.aggregations import parse_aggregation


def test_every_named_subset_is_drawn_from_the_allowlist():
    names = set(aggregations.NAMES)
    for subset in (aggregations.ANY_TYPE, aggregations.FIRST_LAST, aggregations.COUNTER,
                   aggregations.VALUE_LIKE):
        assert set(subset) <= names, subset


def test_the_description_names_every_aggregation_once():
    items = re.split(r", (?![^(]*\))| and (?![^(]*\))", aggregations.DESCRIPTION)
    listed = [item.split(" ")[0] for item in items]
    assert sorted(listed) == sorted([*aggregations.NAMES, "pNN"])


@pytest.mark.parametrize("name", [*aggregations.NAMES, "p1", "p50", "p99.9", "p0.001"])
def test_the_openapi_pattern_and_the_parser_accept_the_same_names(name):
    assert re.match(aggregations.PATTERN, name)
    assert parse_aggregation(name).name == name


@pytest.mark.parametrize("name", ["mean", "p0", "p100", "p", "avg;", "AVG", "p99.9999"])
def test_an_unknown_name_is_refused_with_the_description(name):
    with pytest.raises(ValueError, match=re.escape(aggregations.DESCRIPTION)):
        parse_aggregation(name)


@pytest.mark.parametrize("name", ["p\u0665\u0660", "p\uff15", "p50\n", "p9\u0669.9"],
                         ids=["arabic-indic", "fullwidth", "newline", "mixed"])
def test_a_percentile_is_ascii_digits_and_nothing_after(name):
    # `\d` matched any script's digits and `$` a final newline: p٥٠ ran as p50 under a
    # name (and cache key) of its own. Numbers elsewhere are ASCII digits only.
    with pytest.raises(ValueError, match=re.escape(aggregations.DESCRIPTION)):
        parse_aggregation(name)


def test_counters_are_the_rate_and_increase_aggregations():
    assert {n for n in aggregations.NAMES if parse_aggregation(n).is_counter} == {
        "rate", "increase"}


def test_only_first_and_last_pick_a_points_own_value():
    assert {n for n in aggregations.NAMES if parse_aggregation(n).picks_a_point} == {
        "first", "last"}


def test_string_metrics_allow_counting_and_picking_only():
    allowed = {n for n in aggregations.NAMES if not parse_aggregation(n).numeric_only}
    assert allowed == {"count", "count_distinct", "first", "last"}
    assert parse_aggregation("p50").numeric_only
