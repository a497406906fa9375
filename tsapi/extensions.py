"""Extension singletons, created unbound here and wired to an app by init_app."""

from flask_caching import Cache

cache = Cache()
