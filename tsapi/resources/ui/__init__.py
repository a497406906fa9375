"""The explorer page resource."""

from tsapi.resources.ui.routes import blp

__all__ = ["blp"]
