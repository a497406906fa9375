"""Names in requests, held to tsapi.formats.names: a schema validator, and one path check.

Body fields and query strings are checked by their schemas (`NAME`, `name_errors`); path
parameters, which no schema sees, by one hook for every route.

Metric names may hold `/` (ingest takes them), so a route names a metric with the `name`
converter, which matches across slashes: `/metrics/a/b` is metric `a/b`. The routes that
add a suffix win where both could match: `/metrics/{name}/latest`, `/metrics/{name}/tags/{key}`
(a key never holds `/` in a path) and `/cache/metrics/{metric}/clear` read the name as
everything before the suffix, so `GET /metrics/a/latest` is metric `a`'s latest points and
`GET /metrics/a/latest/latest` those of `a/latest`. Such a name is described with
`GET /metrics/{name}/describe` (a name ending in `/describe` too: the last suffix counts);
DELETE has no suffix route, so `DELETE /metrics/{name}` takes any name whole.
"""

from __future__ import annotations

import re

import marshmallow as ma
from flask import Flask, current_app, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import PathConverter, RoutingException

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


class NameConverter(PathConverter):
    """A metric name in a path: any text, slashes included (a leading one, or two in a row,
    too: the rules using it do not merge slashes)."""

    # Any character, a newline too: a name with a control character must reach the check
    # below (a 404 naming the parameter), as it does with werkzeug's own converters.
    regex = r"[\s\S]+?"
    # Matches across "/": werkzeug must try it against the rest of the path, not one part.
    part_isolating = False


def init_path_checks(app: Flask) -> None:
    """Check path parameters after authentication (registered after the auth hook), and
    let routes name metrics that hold slashes (`<name:...>`)."""
    app.url_map.converters["name"] = NameConverter
    app.before_request(_check_path_parameters)


NOT_UTF8 = "is not valid UTF-8 once percent-decoded"


def _parameters_not_utf8() -> set[str]:
    """The path parameters holding bytes that are not UTF-8.

    WSGI hands the percent-decoded path over as bytes spelled in Latin-1, and werkzeug
    decodes them replacing what is not UTF-8 with U+FFFD: `caf%E9` would become the name
    "caf\\ufffd", a different (possibly stored) metric. Matching the path again with each
    bad byte kept as a lone surrogate tells which parameter held one."""
    wsgi = request.environ  # the WSGI request, not the process environment
    raw = wsgi.get("PATH_INFO", "").encode("latin-1")
    try:
        raw.decode("utf-8")
    except UnicodeError:
        pass
    else:
        return set()
    adapter = current_app.url_map.bind_to_environ(request.environ)
    try:
        _, args = adapter.match(raw.decode("utf-8", "surrogateescape"), method=request.method)
    except (RoutingException, HTTPException):
        return set(request.view_args or ())  # cannot tell which: refuse every candidate
    return {name for name, value in args.items()
            if isinstance(value, str) and _ESCAPED.search(value)}


_ESCAPED = re.compile("[\udc80-\udcff]")


def _check_path_parameters() -> None:
    # No metric or tag is named with a control character (ingest refuses them), so such a
    # path names nothing that exists: 404, naming the parameter, and no query is run.
    # Neither does one whose bytes are not UTF-8 (each shows as U+FFFD once decoded).
    view_args = request.view_args or {}
    bad = None
    for name, value in view_args.items():
        problem = name_problem(value) if isinstance(value, str) else None
        if not problem and isinstance(value, str) and "\ufffd" in value:
            bad = _parameters_not_utf8() if bad is None else bad
            problem = NOT_UTF8 if name in bad else None
        if problem:
            raise NotFound(f"Not found: the path parameter '{name}' {problem}",
                           errors=[field_error(name, problem)])
