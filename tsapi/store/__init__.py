"""The data-access layer: every SQL statement the service runs lives in this package."""

from flask import current_app

from tsapi.store.engine import Database


def database() -> Database:
    """The current app's database handle."""
    return current_app.extensions["tsapi.db"]
