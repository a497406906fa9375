"""The query resource."""

from tsapi.api.resources.query.routes import blp

__all__ = ["blp"]
