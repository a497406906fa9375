"""The explorer page resource."""

from tsapi.api.resources.ui.routes import blp

__all__ = ["blp"]
