"""The status resource."""

from tsapi.api.resources.status.routes import blp

__all__ = ["blp"]
