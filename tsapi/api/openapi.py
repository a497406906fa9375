"""The flask-smorest Api: OpenAPI document, Swagger UI served locally, problem-detail errors."""

from __future__ import annotations

from http import HTTPStatus

import marshmallow as ma
from flask import Blueprint, Flask, send_from_directory
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from werkzeug.exceptions import HTTPException

from tsapi.api.problems import PROBLEM_MIMETYPE, http_exception_response

API_SETTINGS = {
    "API_TITLE": "tsapi",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "/docs",
    # Served from the swagger-ui-bundle package: the docs page works without the internet.
    "OPENAPI_SWAGGER_UI_URL": "/docs/assets/",
    "API_SPEC_OPTIONS": {
        "info": {
            "description": "Store timestamped points in batches and read them back raw or "
            "aggregated into time buckets. Errors are RFC 9457 problem details.",
        },
    },
}


class TsApi(Api):
    """flask-smorest's Api, rendering every HTTP error as a problem detail."""

    def handle_http_exception(self, error: HTTPException):
        return http_exception_response(error)

    def _register_responses(self):
        """Document every error response as application/problem+json, as it is served."""
        for status in HTTPStatus:
            response: dict = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
            content_type = PROBLEM_MIMETYPE if status >= 400 else (
                self.DEFAULT_RESPONSE_CONTENT_TYPE)
            prepare_response(response, self.spec, content_type)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_MIMETYPE)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)




class FieldErrorSchema(ma.Schema):
    field = ma.fields.String(metadata={"description": "Where: e.g. data[3].value"})
    message = ma.fields.String()
    index = ma.fields.Integer(metadata={"description": "The point's index in a batch"})
    line = ma.fields.Integer(metadata={"description": "The line, for CSV and line-protocol bodies"})


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details: the body of every error response."""

    type = ma.fields.String(metadata={"example": "about:blank"})
    title = ma.fields.String(metadata={"example": "Not Found"})
    status = ma.fields.Integer(metadata={"example": 404})
    detail = ma.fields.String(metadata={"example": "Metric 'temperature' not found"})
    errors = ma.fields.List(ma.fields.Nested(FieldErrorSchema))
    # The line-protocol endpoints add InfluxDB's own members, which its clients display.
    code = ma.fields.String(metadata={"description": "InfluxDB error code (/write, /api/v2/write)"})
    message = ma.fields.String(metadata={"description": "InfluxDB error message (same endpoints)"})
    error = ma.fields.String(metadata={"description": "InfluxDB 1's error message (same "
                                   "endpoints; Telegraf's influxdb output logs it)"})


TsApi.ERROR_SCHEMA = ProblemSchema


def problem_doc(blp, status: int, description: str):
    """Document an error response of a view: a problem detail with this description."""
    return blp.alt_response(status, schema=ProblemSchema, description=description,
                            content_type=PROBLEM_MIMETYPE)


def init_api(app: Flask, version: str) -> TsApi:
    for key, value in API_SETTINGS.items():
        app.config.setdefault(key, value)
    app.config.setdefault("API_VERSION", version)
    api = TsApi(app)
    # Views list these in their `security` (tsapi.api.auth.requires); `Authorization: Token <t>`
    # (InfluxDB clients) is accepted too but has no OpenAPI spelling.
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer",
                       "description": "An API key made with `tsapi keys create`"})
    api.spec.components.security_scheme(
        "apiKeyHeader", {"type": "apiKey", "in": "header", "name": "X-API-Key"})
    _register_docs_assets(app)
    return api


def _register_docs_assets(app: Flask) -> None:
    from swagger_ui_bundle import swagger_ui_path

    assets = Blueprint("docs_assets", __name__)

    @assets.route("/docs/assets/<path:filename>")
    def swagger_asset(filename: str):
        return send_from_directory(swagger_ui_path, filename)

    app.register_blueprint(assets)
