"""tsapi: a small, fast time-series storage and query API.

The layers, outermost first (tsapi.api is the only one that knows HTTP; see the README's
Architecture section): cli, api -> services -> store -> formats; errors and config below all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

from tsapi.version import __version__

__all__ = ["__version__", "create_app"]


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the Flask app (tsapi.api.app) with the `tsapi` commands (tsapi.cli) on app.cli."""
    from tsapi.api.app import create_app as build
    from tsapi.cli import register_commands

    app = build(config)
    register_commands(app)
    return app
