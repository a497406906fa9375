"""The validator's fast path for usual points (a name and tag set already found valid, in
this batch or an earlier one, a number in range) gives the same verdict and the same stored
value as the full checks, which every point that is not exactly a dict takes; so does its
fast read of the usual time spelling."""

from __future__ import annotations

import math
import struct
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tsapi.errors import InvalidInput
from tsapi.formats.point_times import read_time, utc_z_form
from tsapi.formats.validation import (
    CHECKED,
    MAX_EXACT_INT,
    WIDE_INT,
    validate_points,
)

TIMES = st.one_of(
    st.just("2024-01-01T00:00:00Z"), st.just("2024-01-01T00:00:00Z"),
    st.sampled_from(["2024-01-01T00:00:00Z", "2024-01-01T01:00:00+01:00", "0001-01-01T00:00:00Z",
                     "9999-12-31T23:59:59.999999Z", "9999-12-31T23:00:00-05:00", "2024-13-01",
                     "2024-01-01T00:00:00.0000001Z", "", "now"]),
    st.integers(min_value=-10**12, max_value=10**12), st.floats(allow_nan=True),
    st.booleans(), st.none(),
)
# Mostly usual points, so that most points after the first take the fast path.
NAMES = st.sampled_from(["cpu"] * 8 + ["mem", " cpu", "", "a\x00b", "a\x01", "x" * 256, "é😀"])
EDGES = [MAX_EXACT_INT, MAX_EXACT_INT + 1, -MAX_EXACT_INT, -MAX_EXACT_INT - 1, WIDE_INT,
         -WIDE_INT, math.nextafter(WIDE_INT, 0), math.inf, -math.inf, math.nan, -0.0, 5e-324]
VALUES = st.one_of(
    st.sampled_from(EDGES), st.sampled_from(EDGES),
    st.integers(min_value=-2**64, max_value=2**64), st.floats(), st.sampled_from(EDGES),
    st.booleans(), st.none(), st.text(max_size=5), st.lists(st.integers(), max_size=1),
)
TAG_TEXT = st.sampled_from(["a", "b", "", "x\x01", "é"])
TAGS = st.one_of(
    st.none(), st.none(), st.just({"a": "b"}), st.just({"a": "b"}),
    st.just({}), st.just([]), st.just(""), st.just(0), st.just(False),
    st.dictionaries(TAG_TEXT, st.one_of(TAG_TEXT, st.integers(), st.none(),
                                        st.lists(st.just("v"), max_size=1)), max_size=3),
)
FIELDS = {"time": TIMES, "metric": NAMES, "value": VALUES, "tags": TAGS}


def usual(values):
    """Usual points: valid but perhaps for their value."""
    return st.fixed_dictionaries({
        "time": st.sampled_from(["2024-01-01T00:00:00Z", "2024-01-01T02:00:00+02:00", 0, 1.5]),
        "metric": st.sampled_from(["cpu", "mem"]),
        "value": values,
    }, optional={"tags": st.sampled_from([None, {}, {"a": "b"}, {"b": "c", "a": "b"}])})


# Values either side of each limit; then only those that can be stored.
USUAL = usual(st.one_of(st.integers(min_value=-2**54, max_value=2**54), st.floats(),
                        st.sampled_from(EDGES)))
VALID = usual(st.one_of(
    st.integers(min_value=-MAX_EXACT_INT, max_value=MAX_EXACT_INT),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([e for e in EDGES if math.isfinite(e) and abs(e) <= WIDE_INT
                     and not (isinstance(e, int) and abs(e) > MAX_EXACT_INT)]),
))
POINTS = st.one_of(
    USUAL, USUAL, USUAL, USUAL, USUAL, USUAL,
    st.fixed_dictionaries({}, optional=FIELDS),
    st.fixed_dictionaries({"time": TIMES, "metric": NAMES, "value": VALUES, "tags": TAGS}),
    st.sampled_from([None, [], "point", 1]),
)


class _Unusual(dict):
    """A point the fast path does not take (it takes exact dicts only): the full checks."""


def _outcome(points):
    """Each stored point as (time, metric, value's type and bits, tags), or the errors."""
    try:
        batch = validate_points(points)
    except InvalidInput as exc:
        return exc.errors
    values = [(type(v), struct.pack("<d", v) if isinstance(v, float) else v)
              for v in batch.values]
    return batch.times, batch.metrics, values, batch.tags, batch.maybe_wide_integer


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(POINTS, max_size=6), st.one_of(st.lists(POINTS, max_size=12),
                                                  st.lists(VALID, max_size=12)))
def test_the_fast_path_accepts_exactly_what_the_full_checks_accept_with_the_same_value(
        earlier, points):
    # The full checks with nothing remembered, against the fast path after an earlier batch
    # (valid or not) has left what it found valid.
    CHECKED.metrics.clear()
    CHECKED.tag_sets.clear()
    full = _outcome([_Unusual(p) if isinstance(p, dict) else p for p in points])
    _outcome(earlier)
    assert _outcome(points) == full


def test_what_is_remembered_across_batches_is_bounded():
    CHECKED.metrics.clear()
    for n in range(CHECKED.MAX_ENTRIES + 10):
        validate_points([{"time": 0, "metric": f"m{n}", "value": 1, "tags": {"k": f"v{n}"}}])
        assert len(CHECKED.metrics) <= CHECKED.MAX_ENTRIES
        assert len(CHECKED.tag_sets) <= CHECKED.MAX_ENTRIES
    long_tag = {"k": "v" * CHECKED.MAX_CHARS}
    validate_points([{"time": 0, "metric": "m", "value": 1, "tags": long_tag}])
    assert (("k", long_tag["k"]),) not in CHECKED.tag_sets


# Strings shaped like the usual spelling, YYYY-MM-DDTHH:MM:SS.ffffffZ, most of them valid,
# some with one character changed (a digit out of range, a separator or the zone).
USUAL_TIMES = st.builds(
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%fZ").rjust(27, "0"),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
)
CHANGED = st.builds(lambda t, at, c: t[:at] + c + t[at + 1:], USUAL_TIMES,
                    st.integers(0, 26), st.sampled_from(list("0912345678-:.,T tZz+")))


@settings(max_examples=2000, deadline=None)
@given(st.one_of(USUAL_TIMES, CHANGED, CHANGED.map(lambda t: t + "0"),
                 CHANGED.map(lambda t: t[:-1] + "+00:00")))
def test_the_usual_time_spelling_is_read_as_the_general_parser_reads_it(raw):
    fast = utc_z_form(raw)
    if fast is not None:
        general = read_time(raw)
        assert fast == general and fast.tzinfo is UTC and fast.utcoffset() == general.utcoffset()
