"""What every use case runs against: the database, the response cache and the limits.

Built once per app by tsapi.api from the settings and handed to each use case, so services
never reach for a Flask app or request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tsapi.services.api_keys import KeyCache
from tsapi.services.response_cache import ResponseCache
from tsapi.store.engine import Database


@dataclass(frozen=True)
class Limits:
    """The request bounds use cases enforce (see the README's settings table)."""

    max_batch_points: int
    max_body_bytes: int
    max_query_buckets: int
    max_query_cells: int
    max_raw_rows: int
    max_cached_bytes: int

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Limits:
        return cls(
            max_batch_points=settings["TSAPI_MAX_BATCH_POINTS"],
            max_body_bytes=settings["TSAPI_MAX_BODY_BYTES"],
            max_query_buckets=settings["TSAPI_MAX_QUERY_BUCKETS"],
            max_query_cells=settings["TSAPI_MAX_QUERY_CELLS"],
            max_raw_rows=settings["TSAPI_MAX_RAW_ROWS"],
            max_cached_bytes=settings["TSAPI_MAX_CACHED_BYTES"],
        )


@dataclass(frozen=True)
class LineProtocolNaming:
    """How line protocol maps onto metrics and tags."""

    default_measurement: str  # its fields are stored under the bare field name
    bucket_tag: str  # record the v2 bucket / v1 db as this tag; empty: not recorded

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> LineProtocolNaming:
        return cls(settings["TSAPI_INFLUX_DEFAULT_MEASUREMENT"],
                   settings["TSAPI_INFLUX_BUCKET_TAG"])


@dataclass(frozen=True)
class Runtime:
    db: Database
    cache: ResponseCache
    limits: Limits
    line_protocol: LineProtocolNaming
    keys: KeyCache
    rollups: bool = False  # answer combinable aggregates from rollup tables (TSAPI_ROLLUPS)
