"""The ingest resource."""

from tsapi.resources.ingest.routes import blp

__all__ = ["blp"]
