"""Extension singletons, created unbound here and wired to an app by init_app.

The rate limiter is not here: a Limiter keeps per-app state (whether its storage is dead), so
tsapi.api.ratelimits builds one per app, as flask-smorest's Api is.
"""

from flask_caching import Cache

cache = Cache()
