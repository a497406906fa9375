"""Access control: which scope each view needs, and one before_request hook that enforces it.

Scopes: `read`, `write`, `admin`. admin implies the other two; write does not imply read, so
a sensor gateway's key cannot read data back (give a key both with `--scope read --scope
write`). Views declare their scope with `requires(blp, scope)`; the docs, `/`, `/health` and
the explorer page's files are open; any other view that declares nothing needs admin, so a
forgotten declaration fails closed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, g, request

from tsapi.api.auth_failures import AuthFailures
from tsapi.api.influxql import influxql_credential
from tsapi.api.openapi import problem_doc
from tsapi.api.problems import HttpError
from tsapi.api.rate_windows import RateWindows
from tsapi.api.runtime import runtime
from tsapi.store.keys import ApiKey

SCOPE_ATTRIBUTE = "_tsapi_scope"
# The explorer page (ui) is static HTML and JavaScript; the API calls it makes are guarded.
OPEN_BLUEPRINTS = frozenset({"status", "api-docs", "docs_assets", "ui"})
IMPLIED = {"admin": {"admin", "write", "read"}, "write": {"write"}, "read": {"read"}}
SECURITY = [{"bearerAuth": []}, {"apiKeyHeader": []}]
_UNKNOWN = object()  # required_scope not worked out yet in this request (None is a scope)
_SCOPE_KEY = "tsapi.required_scope"


class Unauthorized(HttpError):
    status = 401

    def __init__(self):
        # One body for a missing, malformed, unknown or revoked key: it tells nothing about
        # which keys exist.
        super().__init__(
            "A valid API key is required: send `Authorization: Bearer <token>`.",
            headers={"WWW-Authenticate": 'Bearer realm="tsapi"'},
        )


class Forbidden(HttpError):
    status = 403


class TooManyFailures(HttpError):
    status = 429

    def __init__(self, retry_after: int):
        super().__init__(
            "Too many requests without a valid API key from this address; see Retry-After.",
            headers={"Retry-After": str(retry_after)},
        )


def requires(blp, scope: str) -> Callable:
    """Declare (and document) the scope a view method needs; the hook below enforces it."""
    if scope not in IMPLIED:
        raise ValueError(f"unknown scope {scope!r}")

    def mark(view: Callable) -> Callable:
        view = blp.doc(security=SECURITY)(view)
        view = problem_doc(blp, 401, "No API key, or an unknown or revoked one")(view)
        view = problem_doc(blp, 403, f"The API key lacks the `{scope}` scope")(view)
        # Every guarded view is also rate limited by its scope (tsapi.api.ratelimits).
        view = problem_doc(blp, 429, f"Over the `{scope}` rate limit; see Retry-After")(view)
        setattr(view, SCOPE_ATTRIBUTE, scope)
        return view

    return mark


def required_scope() -> str | None:
    """The scope the current request's view needs; None for open views and unrouted paths.
    Worked out once per request: authenticate and the rate limiter both ask."""
    # Kept in the request's environ, not in g: requests made inside one app context (a test
    # client under app_context(), say) share its g, and would share the first one's scope.
    scope = request.environ.get(_SCOPE_KEY, _UNKNOWN)
    if scope is _UNKNOWN:
        scope = request.environ[_SCOPE_KEY] = view_scope()
    return scope


def view_scope() -> str | None:
    endpoint = request.endpoint
    if endpoint is None or request.blueprint in OPEN_BLUEPRINTS:
        return None
    if request.method == "OPTIONS":
        return None  # Flask's automatic answer: the allowed methods, no data
    return view_attribute(SCOPE_ATTRIBUTE, "admin")


def view_attribute(name: str, default: Any = None) -> Any:
    """An attribute a decorator set on the function that answers the current request (a
    MethodView's method for its HTTP method); default when it has none or nothing does."""
    endpoint = request.endpoint
    if endpoint is None:
        return default
    view = current_app.view_functions[endpoint]
    view_class = getattr(view, "view_class", None)
    if view_class is None:
        return getattr(view, name, default)
    # MethodView answers HEAD with get when it has no head method.
    method_name = request.method.lower()
    method = getattr(view_class, method_name, None) or (
        getattr(view_class, "get", None) if method_name == "head" else None)
    return getattr(method, name, default)


def header_token() -> str | None:
    """The token from `Authorization: Bearer|Token <token>`, `X-API-Key: <token>` or the
    password of HTTP Basic auth (InfluxDB 1 clients such as Telegraf send that). The other
    place a token may be, the `p` parameter of an InfluxQL query (InfluxDB 1's other way to
    send a password), may be in the body: authenticate reads it only when it must."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in {"bearer", "token"} and value.strip():
        return value.strip()
    if scheme.lower() == "basic" and request.authorization is not None:
        return request.authorization.password or None
    return request.headers.get("X-API-Key", "").strip() or None


def current_key() -> ApiKey | None:
    """The key of the current request (None when auth is off or the view is open)."""
    return g.get("api_key")


def authenticate() -> None:
    scope = required_scope()
    if scope is None or current_app.config["TSAPI_AUTH"] == "off":
        return
    failures: AuthFailures = current_app.extensions["tsapi_auth_failures"]
    address = request.remote_addr or "unknown"
    token = header_token()
    key = runtime().keys.remembered(token) if token is not None else None
    if key is not None and _allows(key, scope):
        # A key from memory cost no lookup, so the address's 401 count (a valid key from an
        # address that keeps failing waits too) is read in the rate limiter's round trip.
        g.api_key = key
        if failures.counting:
            g.unchecked_address = address
        return
    # Before anything costs a lookup: an address that keeps failing waits.
    retry_after = failures.retry_after(address)
    if retry_after is not None:
        raise TooManyFailures(retry_after)
    token = token or influxql_credential()
    key = None
    if token is not None and not failures.known_unknown(token):
        key = runtime().keys.find(token)  # from memory, mostly (tsapi.services.api_keys)
        if key is None:
            failures.remember_unknown(token)
    if key is None:
        failures.failed(address)
        raise Unauthorized()
    if not _allows(key, scope):
        raise Forbidden(f"This API key lacks the `{scope}` scope.")
    g.api_key = key


def _allows(key: ApiKey, scope: str) -> bool:
    return any(scope in IMPLIED[s] for s in key.scopes)


def init_auth(app: Flask, windows: RateWindows) -> None:
    """Must run before the rate limiter is wired: limits are counted per key, and with rate
    limits on the limiter's hook reads the 401 count that authenticate leaves unchecked."""
    limit = app.config["TSAPI_RATE_LIMIT_UNAUTHORIZED"]
    app.extensions["tsapi_auth_failures"] = AuthFailures(
        windows, limit if app.config["TSAPI_RATE_LIMITS"] == "on" else "off")
    app.before_request(authenticate)
