"""Rate limits per API key (per client address when auth is off) and endpoint class.

The classes are the auth scopes: a request to a `write` view counts against
TSAPI_RATE_LIMIT_WRITE, shared by every write view; open views are not counted. Counters are
fixed windows in Redis (REDIS_URL), shared by every worker and node, or in memory without it;
a request costs one Redis round trip, made by a before_request hook that runs after auth
(tsapi.api.rate_windows, which also holds what happens when Redis fails: limits fail open).
A view marked counted_with_cache_lookup (cached /query, GET /metrics) pays none of its own:
the hook leaves the count to ride the response-cache lookup's pipeline, which its work waits
for (tsapi.services.redis_riders); the view sends it as it ends if nothing took it (a 422 from
its arguments), so that a 429 then is raised inside the view like any other.
A write view marked counted_before_its_store (POST /ingest, the line-protocol writes) with a
small body sends its count as the hook runs and reads the answer just before its first
database access, so the round trip overlaps with the body's parsing (tsapi.api.
counts_in_flight, which says which bodies and what an over-limit request costs); over the
limit, its answer is the 429 even when its body was bad, as when the hook refused it.
That round trip also reads the client address's 401 count when authenticate found the key
in memory and left the count unread (tsapi.api.auth_failures).
Over a limit: a 429 problem with Retry-After. Counted responses carry X-RateLimit-Limit,
-Remaining and -Reset (epoch seconds) of the shortest window, or of the one exceeded.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import suppress
from functools import wraps

from flask import Flask, Response, g, request

from tsapi.api.auth import TooManyFailures, current_key, required_scope, view_attribute
from tsapi.api.auth_failures import AuthFailures
from tsapi.api.counts_in_flight import CountSender, read_before_counted
from tsapi.api.problems import HttpError
from tsapi.api.rate_windows import Counter, CountRider, Counts, RateWindows, counter_key
from tsapi.config import RATE_LIMIT_CLASSES, Rate, parse_rates
from tsapi.services.redis_riders import carry, settle, waiting

# How a view's count is made, when not in the hook: it rides the view's cache lookup, or it is
# sent ahead and read before the view's store.
COUNTED_ATTRIBUTE = "_tsapi_counted"
RIDES, SENT_AHEAD = "rides", "sent ahead"


class RateLimited(HttpError):
    status = 429

    def __init__(self, retry_after: int):
        super().__init__("Too many requests for this API key (or client); see Retry-After.",
                         headers={"Retry-After": str(retry_after)})


class ClassLimits:
    """The hooks: count the request against its class's rates, then add the headers."""

    def __init__(self, windows: RateWindows, rates: dict[str, tuple[Rate, ...]],
                 failures: AuthFailures, sender: CountSender | None = None):
        self.windows = windows
        self.sender = sender  # None: no Redis, nothing to send ahead
        self.rates = rates  # by class; a class set to `off` is absent
        self.failures = failures

    def count(self) -> None:
        # The 401 count of the address, when authenticate left it to this round trip.
        address = g.pop("unchecked_address", None)
        peek = self.failures.counters(address) if address is not None else ()
        scope = required_scope()
        rates = self.rates.get(scope, ()) if scope is not None else ()
        if not rates and not peek:
            return
        key = current_key()
        identity = f"key:{key.id}" if key is not None else f"ip:{request.remote_addr}"
        hit = [Counter(counter_key(scope, identity, rate), rate) for rate in rates]

        def judge(counts: Counts) -> None:
            self._judge(counts, rates)

        counted = view_attribute(COUNTED_ATTRIBUTE) if self.windows.shared else None
        if counted == RIDES:
            # Counted in the view's first Redis round trip, before its work
            # (tsapi.services.redis_riders); add_headers settles it at the latest.
            carry(CountRider(self.windows, peek, hit, judge))
            return
        if (counted == SENT_AHEAD and self.sender is not None
                and read_before_counted(request.content_length,
                                        request.headers.get("Content-Encoding"))):
            # Read before the write's first database access, or as its view ends.
            flight = self.sender.send(peek, hit, judge)
            if flight is not None:
                carry(flight)
                return
        judge(self.windows.count(peek, hit))

    @staticmethod
    def _judge(counts: Counts, rates: tuple[Rate, ...]) -> None:
        if counts.refused_by is not None:
            raise TooManyFailures(max(counts.ttl, 1))  # ttl is rounded up already
        hits = counts.hits
        if not hits:
            return  # not counted (storage error): let it through
        n, ttl = hits[-1]
        rate = rates[len(hits) - 1]
        over = n > rate.amount
        if not over:
            n, ttl = hits[0]
            rate = rates[0]
        # ttl is rounded up: a client that waits as told finds the window over.
        g.rate_limit_headers = {"X-RateLimit-Limit": str(rate.amount),
                                "X-RateLimit-Remaining": str(max(rate.amount - n, 0)),
                                "X-RateLimit-Reset": str(math.ceil(time.time() + ttl))}
        if over:
            raise RateLimited(max(ttl, 1))

    @staticmethod
    def add_headers(response: Response) -> Response:
        if waiting():
            # Only a hook that answered before the view ran leaves the count waiting: no work
            # was done, so it is counted and the answer stands. Replaced here by a 429, it
            # would miss what the after_request hooks that ran before this one add.
            with suppress(HttpError):
                settle()
        headers = g.pop("rate_limit_headers", None)
        if headers is not None:
            response.headers.update(headers)
        return response


def counted_with_cache_lookup(view: Callable) -> Callable:
    """Mark a view whose work starts after a response-cache lookup (ResponseCache.lookup):
    its rate-limit count rides the lookup's Redis round trip instead of one of its own."""
    return _settled_as_it_ends(view, RIDES)


def counted_before_its_store(view: Callable) -> Callable:
    """Mark a write view whose use case settles the request's riders before its first database
    access (tsapi.services.ingest.store_batch): its count may be sent as the request starts
    and read only then (tsapi.api.counts_in_flight)."""
    return _settled_as_it_ends(view, SENT_AHEAD)


def _settled_as_it_ends(view: Callable, how: str) -> Callable:
    @wraps(view)
    def counted(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        finally:
            # Answered before its work (a 422 from its arguments or body): counted now, still
            # inside the view, so a 429 (which then replaces the 422: the client is over its
            # limit, whatever it sent) goes through the error handler and every hook.
            settle()

    setattr(counted, COUNTED_ATTRIBUTE, how)
    return counted


def init_rate_limits(app: Flask, windows: RateWindows,
                     sender: CountSender | None = None) -> None:
    """After init_auth: requests are counted per authenticated key; with a sender, a write's
    count is sent ahead (tsapi.api.counts_in_flight)."""
    if app.config["TSAPI_RATE_LIMITS"] != "on":
        return
    rates = {scope: parse_rates(app.config[name]) for scope, name in RATE_LIMIT_CLASSES.items()
             if app.config[name] != "off"}
    limits = app.extensions["tsapi_rate_limits"] = ClassLimits(
        windows, rates, app.extensions["tsapi_auth_failures"], sender)
    app.before_request(limits.count)
    app.after_request(limits.add_headers)
