"""Rows of buckets on a regular grid spell each time as the database's JSON rows do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tsapi.formats.regular_rows import fits_grid, regular_rows


def _one_by_one(starts: list[datetime], values: list[str]) -> str:
    # to_json spells a whole second of a timestamptz in UTC as isoformat does.
    return ",".join(f'{{"time":"{t.isoformat()}","value":{v}}}'
                    for t, v in zip(starts, values, strict=True))


@pytest.mark.parametrize(("first", "width", "n"), [
    (datetime(2021, 1, 1, tzinfo=UTC), 3600, 8760),           # a year of hours
    (datetime(2024, 2, 27, 19, 0, tzinfo=UTC), 3600, 100),     # a leap day, from mid-day
    (datetime(2025, 12, 31, 23, 58, tzinfo=UTC), 60, 3000),    # minutes across a new year
    (datetime(1969, 12, 30, 22, 0, tzinfo=UTC), 3600, 60),     # before 1970
    (datetime(2021, 3, 1, tzinfo=UTC), 86400, 400),            # days
    (datetime(2021, 3, 1, 0, 45, tzinfo=UTC), 900, 1),         # one
])
def test_consecutive_buckets_are_spelled_one_by_one(first, width, n):
    values = [repr(k / 7) if k % 5 else "null" for k in range(n)]
    starts = [first + timedelta(seconds=width * k) for k in range(n)]
    assert regular_rows(first, width, values) == _one_by_one(starts, values)


def test_buckets_with_gaps_are_spelled_at_their_starts():
    first = datetime(2021, 6, 30, 21, 0, tzinfo=UTC)
    kept = [k for k in range(200) if k % 3 and k not in (0, 1, 50)]  # the first ones missing
    starts = [first + timedelta(hours=k) for k in kept]
    values = [str(k) for k in kept]
    seconds = [int(t.timestamp()) for t in starts]
    assert regular_rows(first, 3600, values, seconds) == _one_by_one(starts, values)


def test_one_bucket_after_a_gap_is_spelled_at_its_start():
    first = datetime(2021, 6, 30, 21, 0, tzinfo=UTC)
    start = first + timedelta(hours=30)
    assert regular_rows(first, 3600, ["2.5"], [int(start.timestamp())]) == _one_by_one(
        [start], ["2.5"])


def test_a_time_in_another_offset_is_spelled_in_utc():
    first = datetime(2021, 1, 1, 1, 0, tzinfo=UTC).astimezone(
        datetime.fromisoformat("2021-01-01T00:00:00+05:30").tzinfo)
    assert regular_rows(first, 3600, ["1.0"]) == '{"time":"2021-01-01T01:00:00+00:00","value":1.0}'


def test_no_value_is_no_row():
    assert regular_rows(datetime(2021, 1, 1, tzinfo=UTC), 3600, []) == ""


def test_only_widths_that_tile_a_day_fit_the_grid():
    assert [w for w in (60, 3600, 86400, 7 * 3600, 2 * 86400, 0) if fits_grid(w)] == [
        60, 3600, 86400]
