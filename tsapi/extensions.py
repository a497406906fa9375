"""Extension singletons, created unbound here and wired to an app by init_app."""

from flask_caching import Cache
from flask_limiter import ApplicationLimit, Limiter

from tsapi.ratelimits import class_limit, class_scope, rate_limit_exempt, rate_limit_identity

cache = Cache()

# One counter per (key or client, endpoint class), with the class's limit; see ratelimits.
limiter = Limiter(
    rate_limit_identity,
    application_limits=[ApplicationLimit(
        limit_provider=class_limit, scope=class_scope,
        error_message="Too many requests for this API key (or client); see Retry-After.",
    )],
    in_memory_fallback=[class_limit],
    headers_enabled=True,
    key_prefix="tsapi",
)
limiter.request_filter(rate_limit_exempt)
