"""The cache resource."""

from tsapi.api.resources.cache.routes import blp

__all__ = ["blp"]
