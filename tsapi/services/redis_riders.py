"""Commands that ride a request's next Redis round trip instead of paying one of their own.

The rate limiter (tsapi.api) must count a request before its work starts; a cached /query or
GET /metrics starts by reading the response cache, another round trip to the same Redis. So
the limiter may leave its count here (`carry`), a pipeline the cache sends takes it along
(`Trip`), and whatever no pipeline took is sent alone by `settle`, which each use case calls
after its cache lookup and before its work. A round trip against a local Redis costs a
request ~0.1-0.3 ms of wall time, about what the whole limiter was allowed.

A rider learns its outcome in two steps: `read` gets its answers (or the error that lost the
trip) while the trip is inside the Redis gate, and must not raise; `finish` acts on it once
the trip is over, and may refuse the request by raising. A trip the gate did not let through
took no rider: they stay for `settle`, whose own calls meet the closed gate as they would have.

A write has no round trip before its work for its count to ride: the limiter sends the count
itself as the request starts, and leaves here a rider that only reads its answer
(tsapi.api.counts_in_flight); the ingest use case settles before its first database access.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Protocol

from redis.exceptions import RedisError


class Rider(Protocol):
    def queue(self, pipe: Any) -> int:
        """Queue its commands on a pipeline (transaction=False); how many it queued."""

    def read(self, answers: list[Any] | RedisError) -> None:
        """Its commands' answers (a failed command's error in its place), or the error that
        lost the whole trip (unreachable Redis). Never raises."""

    def finish(self) -> None:
        """Act on what read found; may raise to refuse the request."""

    def alone(self) -> None:
        """Make its own round trip, then act on it (no pipeline took it)."""

    def forget(self) -> None:
        """Give up its outcome (the request ended without settling it); never raises."""


_riders: ContextVar[tuple[Rider, ...]] = ContextVar("tsapi_redis_riders", default=())


def carry(rider: Rider) -> None:
    """Send rider's commands with the request's next pipeline, or at `settle` at the latest."""
    _riders.set((*_riders.get(), rider))


def waiting() -> bool:
    return bool(_riders.get())


def settle() -> None:
    """Send every rider still waiting, alone: called before the work they must precede."""
    riders = _riders.get()
    if riders:
        _riders.set(())
        for rider in riders:
            rider.alone()


def drop() -> None:
    """Forget riders at the end of a request (its after_request hooks settled them)."""
    riders = _riders.get()
    if riders:
        _riders.set(())
        for rider in riders:
            rider.forget()


class Trip:
    """One pipeline and the riders it took: `execute` inside the gate, `finish` after it."""

    def __init__(self) -> None:
        self._taken: list[tuple[Rider, int]] = []

    def execute(self, pipe: Any) -> list[Any]:
        """Queue the waiting riders after the caller's commands, send everything, and return
        the caller's own answers; a failed one is raised, as pipe.execute() would have."""
        own = len(pipe)
        riders = _riders.get()
        _riders.set(())
        self._taken = [(rider, rider.queue(pipe)) for rider in riders]
        try:
            answers = pipe.execute(raise_on_error=False)
        except RedisError as exc:
            for rider, _ in self._taken:
                rider.read(exc)
            raise
        start = own
        for rider, n in self._taken:
            rider.read(answers[start:start + n])
            start += n
        for answer in answers[:own]:
            if isinstance(answer, RedisError):
                raise answer
        return answers[:own]

    def finish(self) -> None:
        """Let the riders act on their answers (one may refuse the request by raising)."""
        taken, self._taken = self._taken, []
        for rider, _ in taken:
            rider.finish()
