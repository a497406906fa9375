"""The API's resources, one blueprint each, registered in one place."""

from flask_smorest import Api

from tsapi.api.resources import cache, influx, ingest, metrics, query, status, ui

RESOURCES = (status, ingest, influx, query, metrics, cache, ui)


def register_resources(api: Api) -> None:
    for resource in RESOURCES:
        api.register_blueprint(resource.blp)
