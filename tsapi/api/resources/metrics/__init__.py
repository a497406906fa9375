"""The metrics resource."""

from tsapi.api.resources.metrics.routes import blp

__all__ = ["blp"]
