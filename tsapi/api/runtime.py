"""The current app's Runtime (database, response cache, limits), for views to pass on."""

from flask import Flask, current_app

from tsapi.services.runtime import Runtime

EXTENSION_KEY = "tsapi"


def runtime() -> Runtime:
    return current_app.extensions[EXTENSION_KEY]


def runtime_of(app: Flask) -> Runtime:
    return app.extensions[EXTENSION_KEY]


def install_runtime(app: Flask, rt: Runtime) -> None:
    app.extensions[EXTENSION_KEY] = rt
