"""The validator's fast path for usual points (a name and tag set already checked in the
batch, a number in range) gives the same verdict and the same stored value as the full
checks, which every point that is not exactly a dict takes."""

from __future__ import annotations

import math
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tsapi.errors import InvalidInput
from tsapi.formats.validation import MAX_EXACT_INT, WIDE_INT, validate_points

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
@given(st.one_of(st.lists(POINTS, max_size=12), st.lists(VALID, max_size=12)))
def test_the_fast_path_accepts_exactly_what_the_full_checks_accept_with_the_same_value(points):
    full = [_Unusual(p) if isinstance(p, dict) else p for p in points]
    assert _outcome(points) == _outcome(full)
