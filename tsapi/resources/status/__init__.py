"""The status resource."""

from tsapi.resources.status.routes import blp

__all__ = ["blp"]
