"""The ingest resource."""

from tsapi.api.resources.ingest.routes import blp

__all__ = ["blp"]
