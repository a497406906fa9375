"""One gate in front of Redis for everything in a process that uses it: after Redis fails to
answer, back off, then let one request at a time find out whether it is back.

The rate limiter, the response cache, the API-key cache and the read-your-writes watermark
all talk to the same Redis. Each used to keep its own back-off, so a Redis that accepts
connections and never answers cost a request one socket timeout per user, and each user
learned of an outage only by waiting out a timeout of its own. Behind one gate, the first
call that finds Redis unreachable (connection refused or lost, or no answer within the
socket timeout) closes it for all of them; while it is closed, a call is not tried at all
(GateClosed, a redis ConnectionError, so each user's own handling of an unreachable Redis
applies: count in memory, skip the cache, short-lived key entries, read the primary).

The policy: closed for 1 s after the first failure, then one call is let through (a probe);
each failed probe doubles the pause, up to 30 s; any answer from Redis opens the gate.
Calls that were already waiting when the gate closed fail together, and that is one failure,
not one doubling each. 1 s is about one socket timeout, so probes do not overlap; 30 s bounds
how long a worker counts rate limits alone (never stricter than the shared count) and goes
without the response cache once Redis is back. An error *answer* (out of memory, wrong type)
leaves the gate open: Redis is there, and the caller handles the error.

A caller that owes Redis a write others depend on (the response cache's generation bump:
until it is made, another worker may serve an entry older than the data) asks `urgent`: it
may probe 1 s after the last attempt, whatever the pause has grown to.

A request waits on an unreachable Redis at most once: once a call of its own found Redis
unreachable, no later call of that request is tried while the gate is closed, urgent or not
(a write that took over a second would otherwise probe again with its generation bump). The
HTTP layer marks where each request starts and ends (start_request, end_request).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

FIRST_PAUSE_SECONDS = 1.0
MAX_PAUSE_SECONDS = 30.0
UNREACHABLE = (RedisConnectionError, RedisTimeoutError)

T = TypeVar("T")
# Whether the current request has found Redis unreachable; None outside a request.
_waited: ContextVar[bool | None] = ContextVar("tsapi_redis_waited", default=None)


def start_request() -> None:
    _waited.set(False)


def end_request() -> None:
    _waited.set(None)


class GateClosed(RedisConnectionError):
    """Redis was not tried: it failed recently, and it is not this call's turn to probe."""


class RedisGate:
    """call(fn) -> fn(), unless Redis failed recently (GateClosed); shared per process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._pause = 0.0  # 0: open
        self._retry_at = 0.0  # a (not urgent) probe is let through from then
        self._tried_at = float("-inf")  # the last probe let through, or the closing failure
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return not self._pause

    def call(self, fn: Callable[[], T], *, urgent: bool = False) -> T:
        """fn()'s answer; raises GateClosed instead of trying Redis while the gate is closed
        (but for the one probe), and whatever RedisError fn raised."""
        return self._run(fn, self._admit(urgent))

    def check(self, fn: Callable[[], T]) -> T:
        """fn(), whether the gate is open or not: for a health check, which must see Redis as
        it is, and for a call that must follow a quick failure at once. Its outcome opens or
        closes the gate all the same."""
        return self._run(fn, probe=False)

    def _admit(self, urgent: bool) -> bool:
        """False: the gate is open; True: this call is the probe; GateClosed otherwise."""
        if not self._pause:
            return False
        if _waited.get():
            raise GateClosed("Redis failed earlier in this request: not tried again")
        with self._lock:
            if not self._pause:
                return False
            now = self.clock()
            due = self._tried_at + FIRST_PAUSE_SECONDS if urgent else self._retry_at
            if now >= due:
                self._tried_at = now
                # A probe that hangs keeps the others out for a whole pause.
                self._retry_at = max(self._retry_at, now + self._pause)
                return True
        raise GateClosed("Redis failed recently: not tried")

    def _run(self, fn: Callable[[], T], probe: bool) -> T:
        try:
            answer = fn()
        except GateClosed:
            raise  # a call inside fn was not tried: nothing learned about Redis
        except UNREACHABLE as exc:
            self._unreachable(probe, exc)
            raise
        except RedisError:
            self._answered()  # an error, but an answer: Redis is there
            raise
        self._answered()
        return answer

    def _unreachable(self, probe: bool, exc: Exception) -> None:
        if _waited.get() is not None:
            _waited.set(True)
        with self._lock:
            closing = not self._pause
            if not closing and not probe:
                return  # in flight when another call closed the gate: the same failure
            self._pause = min(MAX_PAUSE_SECONDS, self._pause * 2 or FIRST_PAUSE_SECONDS)
            self._tried_at = self.clock()
            self._retry_at = self._tried_at + self._pause
            pause = self._pause
        (log.warning if closing else log.info)(
            "redis unreachable: not tried again for %.0f s: %s", pause, exc)

    def _answered(self) -> None:
        if not self._pause:
            return
        with self._lock:
            was_closed, self._pause = bool(self._pause), 0.0
        if was_closed:
            log.info("redis answers again")
