"""Failed authentication made cheap: clients that keep failing are refused before any database
lookup, and unknown tokens are remembered for a few seconds.

A flood of bogus tokens used to cost one key lookup each (about 270 a second doubled the
latency of legitimate clients). Each 401 now counts against the client address, with
TSAPI_RATE_LIMIT_UNAUTHORIZED (in Redis when there is one, so all workers count together);
over it, the address gets 429 with Retry-After before its token is even read. A token found
unknown is kept (hashed) in a small per-process set for NEGATIVE_TTL_SECONDS, so repeating it
costs no lookup either. Keys are random secrets, so remembering that one is unknown can never
refuse a key that exists; revocations are not cached at all.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time

from limits import parse_many
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

log = logging.getLogger(__name__)

NEGATIVE_TTL_SECONDS = 10.0
MAX_NEGATIVE_ENTRIES = 10_000


class AuthFailures:
    """Per-address counts of 401s, and a short-lived set of unknown tokens."""

    def __init__(self, storage_uri: str, limit: str, storage_options: dict | None = None):
        self._limits = [] if limit == "off" else parse_many(limit)
        self._limiter = FixedWindowRateLimiter(
            storage_from_string(storage_uri, **(storage_options or {}))) if self._limits else None
        self._unknown: dict[bytes, float] = {}
        self._lock = threading.Lock()

    # -- per address ------------------------------------------------------------------------
    def retry_after(self, address: str) -> int | None:
        """Seconds until the address may try again; None when it is under the limit."""
        if self._limiter is None:
            return None
        try:
            for limit in self._limits:
                if not self._limiter.test(limit, "unauthorized", address):
                    reset, _ = self._limiter.get_window_stats(limit, "unauthorized", address)
                    return max(1, int(reset - time.time()) + 1)
        except Exception as exc:  # storage trouble: fail open, like the other rate limits
            log.warning("auth failure counter unavailable: %s", exc)
        return None

    def failed(self, address: str) -> None:
        if self._limiter is None:
            return
        try:
            for limit in self._limits:
                self._limiter.hit(limit, "unauthorized", address)
        except Exception as exc:
            log.warning("auth failure counter unavailable: %s", exc)

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
