"""Extension singletons, created unbound here and wired to an app by init_app.

The rate limiter is not here: its counters keep per-app state (whether Redis is reachable),
so create_app builds them per app (tsapi.api.rate_windows), as flask-smorest's Api is.
"""

from flask_caching import Cache

cache = Cache()
