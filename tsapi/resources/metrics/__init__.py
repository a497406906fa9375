"""The metrics resource."""

from tsapi.resources.metrics.routes import blp

__all__ = ["blp"]
