"""Response-cache keys of queries: the whole request, its format and its metrics' generations.

Ingest bumps a metric's generation after it commits, so an entry can never outlive the data
it was computed from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from tsapi.services.query.request import QueryRequest
from tsapi.services.response_cache import ResponseCache


def metric_prefix(name: str) -> str:
    """The start of every key of queries led by this metric (what clearing it removes)."""
    return f"query:{name}:"


def key_for(request: QueryRequest, fmt: str, generations: Sequence[int]) -> str:
    # The dataclass is serialized field by field, so a field added later is in the key too.
    normalized = orjson.dumps(request, option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha256(normalized + fmt.encode()).hexdigest()[:32]
    stamp = ".".join(map(str, generations))
    return f"{metric_prefix(request.metrics[0])}{stamp}:{digest}"


def cached_answer(request: QueryRequest, fmt: str, cache: ResponseCache,
                  now: datetime | None = None) -> tuple[str | None, Any]:
    """The request's key (None: do not cache it) and what the cache holds under it (None: a
    miss), in one Redis round trip while the metrics' generations hold still
    (ResponseCache.lookup).

    Ranges reaching into the future are not cached at all: the answer changes with every
    point that arrives. Nor is anything while the cache cannot vouch for its generations.
    """
    if not _cacheable(request, now):
        return None, None
    return cache.lookup(list(request.metrics), lambda gens: key_for(request, fmt, gens))


def _cacheable(request: QueryRequest, now: datetime | None) -> bool:
    return request.end <= (now or datetime.now(UTC))
