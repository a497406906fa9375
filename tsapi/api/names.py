"""Names in requests, held to tsapi.formats.names: a schema validator, and one path check.

Body fields and query strings are checked by their schemas (`NAME`, `name_errors`); path
parameters, which no schema sees, by one hook for every route.
"""

from __future__ import annotations

import marshmallow as ma
from flask import Flask, request

from tsapi.errors import NotFound, field_error
from tsapi.formats.names import name_problem


class _Name(ma.validate.Validator):
    """Refuses text that cannot name a metric or tag (see tsapi.formats.names)."""

    def __call__(self, value: str) -> str:
        problem = name_problem(value)
        if problem:
            raise ma.ValidationError(problem)
        return value


NAME = _Name()


def name_errors(texts) -> str | None:
    """The first problem among several names (e.g. a tag filter's keys and values), or None."""
    for text in texts:
        problem = name_problem(text)
        if problem:
            return problem
    return None


def init_path_checks(app: Flask) -> None:
    """Check path parameters after authentication (registered after the auth hook)."""
    app.before_request(_check_path_parameters)


def _check_path_parameters() -> None:
    # No metric or tag is named with a control character (ingest refuses them), so such a
    # path names nothing that exists: 404, naming the parameter, and no query is run.
    for name, value in (request.view_args or {}).items():
        problem = name_problem(value) if isinstance(value, str) else None
        if problem:
            raise NotFound(f"Not found: the path parameter '{name}' {problem}",
                           errors=[field_error(name, problem)])
