"""The InfluxDB write resource: line protocol on the v1 and v2 write endpoints."""

from tsapi.api.resources.influx.routes import blp

__all__ = ["blp"]
