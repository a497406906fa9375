"""Failed authentication made cheap: clients that keep failing are refused before any database
lookup, and unknown tokens are remembered for a few seconds.

A flood of bogus tokens used to cost one key lookup each (about 270 a second doubled the
latency of legitimate clients). Each 401 now counts against the client address, with
TSAPI_RATE_LIMIT_UNAUTHORIZED (in Redis when there is one, so all workers count together,
as the other rate limits do: tsapi.api.rate_windows);
over it, the address gets 429 with Retry-After before its token is even read. A token found
unknown is kept (hashed) in a small per-process set for NEGATIVE_TTL_SECONDS, so repeating it
costs no lookup either. Keys are random secrets, so remembering that one is unknown can never
refuse a key that exists; revocations are not cached at all.
"""

from __future__ import annotations

import hashlib
import threading
import time

from tsapi.api.rate_windows import Counter, RateWindows, counter_key
from tsapi.config import parse_rates

NEGATIVE_TTL_SECONDS = 10.0
MAX_NEGATIVE_ENTRIES = 10_000


class AuthFailures:
    """Per-address counts of 401s, and a short-lived set of unknown tokens."""

    def __init__(self, windows: RateWindows, limit: str):
        self._windows = windows
        self._rates = () if limit == "off" else parse_rates(limit)
        self._unknown: dict[bytes, float] = {}
        self._lock = threading.Lock()

    # -- per address ------------------------------------------------------------------------
    @property
    def counting(self) -> bool:
        return bool(self._rates)

    def counters(self, address: str) -> list[Counter]:
        """The address's 401 counters, for a caller that reads them with others at once."""
        return [Counter(counter_key("unauthorized", address, rate), rate)
                for rate in self._rates]

    def retry_after(self, address: str) -> int | None:
        """Seconds until the address may try again; None when it is under the limit."""
        if not self._rates:
            return None
        counts = self._windows.count(peek=self.counters(address))
        # The counter's time left, already rounded up to whole seconds (never 0).
        return None if counts.refused_by is None else max(counts.ttl, 1)

    def failed(self, address: str) -> None:
        if self._rates:
            self._windows.count(hit=self.counters(address))

    # -- per token --------------------------------------------------------------------------
    @staticmethod
    def _digest(token: str) -> bytes:
        return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()

    def known_unknown(self, token: str) -> bool:
        digest = self._digest(token)
        expires = self._unknown.get(digest)
        if expires is None:
            return False
        if expires < time.monotonic():
            with self._lock:
                self._unknown.pop(digest, None)
            return False
        return True

    def remember_unknown(self, token: str) -> None:
        with self._lock:
            if len(self._unknown) >= MAX_NEGATIVE_ENTRIES:
                self._unknown.clear()  # crude but safe: forgetting only costs a lookup
            self._unknown[self._digest(token)] = time.monotonic() + NEGATIVE_TTL_SECONDS
