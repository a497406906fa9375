"""The value of one aggregation from rollup partials: of one rollup row, or combined over
the partials of an answer bucket (raw points and rollup rows alike)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Double, case, cast, func, literal_column
from sqlalchemy.dialects.postgresql import aggregate_order_by, array

# The picked values (min, max, first, last) plus +0.0, which leaves every double as it is but
# -0.0, made 0.0. The two zeros compare equal, so which of them a min, or a first among
# series tied on time, returns is whichever the scan meets first: the raw path and the rollup
# path meet them in other orders. One spelling for both keeps their answers byte for byte
# alike (tsapi.store.buckets applies the same to the raw path's picks).
SIGNED_ZERO_FREE = frozenset({"min", "max", "first", "last"})


def unsigned_zero(value):
    return value + literal_column("0.0", Double)


# Below this, a total divided by a count (at most 2**63) might round to zero: from it up, the
# quotient is at least 1e-309, which a double holds (as a subnormal, down to 5e-324).
UNDERFLOW_FREE_TOTAL = 1e-290


def unchecked_mean(total, n):
    """total / n as the raw path's avg divides (float8_avg, given its state {n, total, 0}):
    the same IEEE quotient, but where the float8 operator `/` raises "value out of range:
    underflow" for a subnormal total that rounds to zero, float8_avg answers that zero.
    Totals too large for that to happen divide with the operator, which gives the same
    quotient without building float8_avg's array for each row (a year of hourly means:
    ~0.35 ms of a ~4 ms statement); NaN and infinities too (NaN compares above any number)."""
    zero = literal_column("0.0", Double)
    return case(
        ((func.abs(total) >= literal_column(repr(UNDERFLOW_FREE_TOTAL), Double)) & (n != zero),
         total.op("/", return_type=Double)(n)),
        else_=func.float8_avg(array([n, total, zero])))


def single_value(name: str, r):
    """combined_value's value for a bucket of one rollup row, by the same arithmetic."""
    if name in SIGNED_ZERO_FREE:
        return unsigned_zero(_single_value(name, r))
    return _single_value(name, r)


def _single_value(name: str, r):
    n = cast(r.count, Double)
    if name == "count":
        return r.count
    if name == "sum":
        return r.sum
    if name == "avg":
        return unchecked_mean(r.sum, n)
    if name == "min":
        return r.min
    if name == "max":
        return r.max
    if name == "first":
        return r.first_value
    if name == "last":
        return r.last_value
    if name == "stddev":
        return func.float8_stddev_samp(_stddev_state(n, r.sum, r.m2))
    raise ValueError(f"{name} is not combinable")


def _stddev_state(n, total, m2):
    """A part as the state PostgreSQL's stddev_samp keeps: {count, sum, M2}. Its own combine
    and final steps (migration 0006) then do the arithmetic: float8 operators would raise
    "value out of range: underflow" on the products of subnormal deviations, where the raw
    path's stddev_samp, with the same steps in C, answers."""
    return array([n, total, m2])


def combined_value(name: str, p):
    if name in SIGNED_ZERO_FREE:
        return unsigned_zero(_combined_value(name, p))
    return _combined_value(name, p)


def _combined_value(name: str, p):
    n = cast(func.sum(p.n), Double)
    if name == "count":
        return cast(func.sum(p.n), BigInteger)
    if name == "sum":
        return func.sum(p.s)
    if name == "avg":
        return unchecked_mean(func.sum(p.s), n)
    if name == "min":
        return func.min(p.mn)
    if name == "max":
        return func.max(p.mx)
    if name == "first":
        return func.array_agg(aggregate_order_by(p.fv, p.ft, p.fv))[1]
    if name == "last":
        return func.array_agg(aggregate_order_by(p.lv, p.lt.desc(), p.lv.desc()))[1]
    if name == "stddev":
        # Chan et al.'s update, part by part, in PostgreSQL's float8_combine.
        return func.tsapi_stddev_of_parts(_stddev_state(cast(p.n, Double), p.s, p.m2))
    raise ValueError(f"{name} is not combinable")  # the planner never asks for it


