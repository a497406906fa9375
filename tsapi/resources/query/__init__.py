"""The query resource."""

from tsapi.resources.query.routes import blp

__all__ = ["blp"]
