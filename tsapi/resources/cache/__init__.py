"""The cache resource."""

from tsapi.resources.cache.routes import blp

__all__ = ["blp"]
