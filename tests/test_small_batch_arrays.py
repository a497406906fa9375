"""The small-batch statement receives each column as one string in PostgreSQL's array syntax:
whatever a string value holds (quotes, backslashes, braces, commas, spaces, the word NULL) and
whatever a double is (-0.0, subnormal, the largest), the database stores exactly what was
sent, on the statement's first run in a session and on later ones alike."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from helpers import ingest, point
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

T0 = datetime(2024, 1, 1, tzinfo=UTC)
# Any text PostgreSQL can hold (no NUL, no lone surrogate), biased to array syntax.
TEXTS = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
            max_size=30),
    st.text(st.sampled_from('{}",\\ NULLnul\t\'É😀'), max_size=12),
)
DOUBLES = st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                    st.sampled_from([-0.0, 5e-324, -5e-324, 1.7976931348623157e308, 2.0**53]))


def stored(app, metric, column):
    with app.extensions["tsapi"].db.engine.connect() as conn:
        return conn.execute(sa.text(
            f"SELECT p.{column} FROM points p JOIN series s ON s.id = p.series_id "
            "JOIN metrics m ON m.id = s.metric_id WHERE m.name = :m ORDER BY p.time"),
            {"m": metric}).scalars().all()


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(texts=st.lists(TEXTS, min_size=1, max_size=25),
       doubles=st.lists(DOUBLES, min_size=1, max_size=25))
def test_any_storable_string_or_double_is_stored_exactly(app, client, texts, doubles):
    # The same times each example: every write replaces the last one's points.
    times = [(T0 + timedelta(seconds=i)).isoformat() for i in range(25)]
    ingest(client, [point(times[i], "text", v, k='{"a",NULL}') for i, v in enumerate(texts)]
           + [point(times[i], "double", v, k="\\") for i, v in enumerate(doubles)])
    assert stored(app, "text", "value_text")[:len(texts)] == texts
    assert [bits(v) for v in stored(app, "double", "value_num")[:len(doubles)]] == \
        [bits(float(v)) for v in doubles]
