"""A write's rate-limit count, sent to Redis as the request starts and read just before its
work: the round trip overlaps with reading, parsing and validating the body, instead of
coming before them.

Why: a write has no Redis round trip of its own before it stores (a cached read has its cache
lookup, which its count rides: tsapi.services.redis_riders), so its count cost one whole round
trip on the request's path, mostly waiting for Redis to be scheduled on a busy machine.

The count is the same script call as RateWindows.count, sent on a connection of this thread's
own (one per worker thread, kept open: taking one from the client's pool and giving it back
doubled the worker's CPU per count, ~30 us against ~15 in a loop; it is checked before each
send as the pool checks its own, so a Redis restart costs no count). The request reads the
answer when it settles its riders, which the ingest use case does before its first database
access (tsapi.services.ingest), and the view does at the latest as it ends
(counted_before_its_store in tsapi.api.ratelimits): over the limit, the request is refused
then, before anything is stored, and its answer is the 429 whatever else it would have been.

Only a body of known, small size (Content-Length at most EARLY_COUNT_BODY_BYTES, not
compressed) is read before its count is: a request over its limit costs the server at
most that much body read and parsed, and never a database access. Any other write, and any
write while the Redis gate is closed, is counted as it was, before its view starts.

Redis failures are those of RateWindows.count, through the same gate: the send is a call
through it (unreachable: counted in this worker's memory at once); the read is checked by it
(an answer opens it; no answer within the socket timeout, or a lost connection, closes it and
the request is counted in memory); an error answer lets the request through uncounted; a
script Redis forgot is sent again with RateWindows.count.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from redis import Redis
from redis.connection import AbstractConnection
from redis.exceptions import NoScriptError, RedisError

from tsapi.api.rate_windows import Counter, Counts, RateWindows, counts_from, script_input
from tsapi.services.redis_gate import RedisGate

# A few hundred points of JSON; a 50-point batch is ~5 KB.
EARLY_COUNT_BODY_BYTES = 16 * 1024
# Packed commands kept, by counters: a key's requests send the same bytes every time.
MAX_PACKED = 10_000


def read_before_counted(content_length: int | None, content_encoding: str | None) -> bool:
    """Whether a body may be read before its count is known: of known, small size, not
    compressed."""
    return (content_length is not None and content_length <= EARLY_COUNT_BODY_BYTES
            and content_encoding in (None, "", "identity"))


class CountSender:
    """Sends counts ahead, each on its worker thread's own connection to Redis."""

    def __init__(self, windows: RateWindows, client: Redis, gate: RedisGate):
        self.windows = windows
        self.gate = gate
        pool = client.connection_pool
        self._connect = lambda: pool.connection_class(**pool.connection_kwargs)
        self._local = threading.local()
        self._packed: dict[tuple, list[bytes]] = {}

    def send(self, peek: Sequence[Counter], hit: Sequence[Counter],
             then: Callable[[Counts], None]) -> CountInFlight | None:
        """The count, sent; None when the gate is closed (count as before, whose call may be
        the gate's probe). `then` gets the counts when the rider is settled, and may raise."""
        if not self.gate.is_open:
            return None
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = self._connect()
        elif getattr(local, "unread", False) or _stale(conn):
            # A request ended without reading its answer (never read it now), or Redis closed
            # the connection (restarted): the send connects again, as the client's pool does.
            conn.disconnect()
        packed = self._command(conn, peek, hit)
        flight = CountInFlight(self, conn, peek, hit, then)
        try:
            self.gate.call(lambda: conn.send_packed_command(packed))
        except RedisError as exc:
            conn.disconnect()
            flight.counts = self.windows.after_failure(exc, peek, hit)
            return flight
        local.unread = True
        return flight

    def _command(self, conn: AbstractConnection, peek: Sequence[Counter],
                 hit: Sequence[Counter]) -> list[bytes]:
        """The script call, packed once per set of counters (packing cost more than sending)."""
        counters = (*peek, *hit, len(peek))
        packed = self._packed.get(counters)
        if packed is None:
            if len(self._packed) >= MAX_PACKED:
                self._packed.clear()
            keys, args = script_input(peek, hit)
            packed = self._packed[counters] = conn.pack_command(
                "EVALSHA", self.windows.sha, len(keys), *keys, *args)
        return packed

    def answered(self) -> None:
        self._local.unread = False


class CountInFlight:
    """A rider (tsapi.services.redis_riders) whose command has been sent already: no pipeline
    takes it; settling it reads its answer."""

    def __init__(self, sender: CountSender, conn: AbstractConnection,
                 peek: Sequence[Counter], hit: Sequence[Counter],
                 then: Callable[[Counts], None]):
        self.sender, self.conn, self.peek, self.hit, self.then = sender, conn, peek, hit, then
        self.counts: Counts | None = None

    def queue(self, pipe) -> int:
        return 0

    def read(self, answers) -> None:
        pass  # nothing of its own rode the trip

    def finish(self) -> None:
        self.alone()

    def alone(self) -> None:
        if self.counts is None:
            self.counts = self._answer()
        self.then(self.counts)

    def forget(self) -> None:
        if self.counts is None:
            self.counts = Counts(None, 0, [])
            self.conn.disconnect()  # its answer may still come: no later request reads it
            self.sender.answered()

    def _answer(self) -> Counts:
        windows = self.sender.windows
        try:
            answer = self.sender.gate.check(self.conn.read_response)
        except NoScriptError:
            return windows.count(self.peek, self.hit)  # Redis lost it: sent with the script
        except RedisError as exc:
            # The connection is closed on an unreadable answer (redis's read_response).
            return windows.after_failure(exc, self.peek, self.hit)
        except BaseException:
            self.conn.disconnect()
            raise
        finally:
            self.sender.answered()
        return counts_from(answer)


def _stale(conn: AbstractConnection) -> bool:
    """Whether an idle connection has something to read: an end of file (closed by Redis) or
    an answer nobody asked for; either way it is not fit to send on."""
    try:
        return bool(conn.can_read())
    except (RedisError, OSError):
        return True
