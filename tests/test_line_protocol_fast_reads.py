"""Line protocol's fast reads give what the general reads give: a field value that ends in a
digit, and metric names remembered across requests (the next request still refuses a bad
one)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from tsapi.formats.line_protocol_values import BadLine, field_value, general_field_value
from tsapi.formats.validation import CHECKED
from tsapi.services.line_protocol_write import line_protocol_batch

NUMBER_TEXT = st.one_of(
    st.floats().map(repr), st.integers().map(str),
    st.text(alphabet="0123456789+-_.eE iunatfF\t", max_size=8),
    st.sampled_from(["1", "+1", "1_0", "1e400", "-1e400", "nan1", "inf9", "1e5", "٣", "\t1",
                     "0x1", "1.", ".5", "-0", "1i", "1u", "-1u", "t", "TRUE", ""]),
)


def _outcome(read, raw):
    try:
        value = read(raw, "f")
    except BadLine as exc:
        return "bad", str(exc)
    return type(value), math.copysign(1, value) if value == 0 else value


@settings(max_examples=3000, deadline=None)
@given(NUMBER_TEXT)
def test_a_field_value_is_read_as_the_general_read_reads_it(raw):
    assert _outcome(field_value, raw) == _outcome(general_field_value, raw)


BODY_LINES = st.lists(st.tuples(
    st.sampled_from(["tsapi", "w", "w.x", "w\x01"]),
    st.sampled_from(["v", "", "u\x02", "x" * 260, "ok"]),
    st.sampled_from(["1.5", "2i", "t", "bad", "1e999"]),
), min_size=1, max_size=6)


def _batch(body: str):
    batch, numbers, errors = line_protocol_batch(body, "s")
    return batch.metrics, batch.values, numbers, [(e.number, e.reason) for e in errors]


@settings(max_examples=300, deadline=None)
@given(BODY_LINES, BODY_LINES)
def test_names_remembered_from_an_earlier_request_change_no_answer(earlier, lines):
    def body(rows):
        return "".join(f"{m}{',' if k == '' else ' '}{k}={v} 1\n" for m, k, v in rows)

    CHECKED.metrics.clear()
    cold = _batch(body(lines))
    _batch(body(earlier))
    assert _batch(body(lines)) == cold
