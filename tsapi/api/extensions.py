"""Extension singletons, created unbound here and wired to an app by init_app.

The rate limiter is not here: its counters and the Redis gate they share with the caches keep
per-app state (whether Redis is reachable), so create_app builds them per app
(tsapi.api.rate_windows, tsapi.services.redis_gate), as flask-smorest's Api is.
"""

from flask_caching import Cache

cache = Cache()
