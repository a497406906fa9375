"""/cache: what the response cache holds, and clearing it."""

from flask import current_app
from flask.views import MethodView
from redis.exceptions import RedisError

from tsapi.api.arguments import Blueprint
from tsapi.api.auth import requires
from tsapi.api.openapi import problem_doc
from tsapi.api.resources.cache.schemas import CacheInfoSchema, CacheKeysSchema, MessageSchema
from tsapi.api.runtime import runtime
from tsapi.services.query.cache_keys import metric_prefix

blp = Blueprint("cache", __name__, url_prefix="/cache", description="Inspect the cache")


@blp.route("/info")
class CacheInfo(MethodView):
    @requires(blp, "read")
    @blp.response(200, CacheInfoSchema)
    def get(self):
        """Cache status, backend, hits and misses, key count and memory"""
        cache = runtime().cache
        info = {
            "backend": "redis" if cache.uses_redis else "in-process",
            "default_timeout": current_app.config["TSAPI_CACHE_TIMEOUT"],
        }
        if not cache.uses_redis:
            info.update(cache.stats(), status="disconnected",
                        detail="REDIS_URL is not set: caching in this process's memory")
            return info
        try:
            info.update(cache.stats(), status="connected")
        except RedisError as exc:
            # keys=None also keeps marshmallow from reading dict.keys as the field.
            info.update(status="disconnected", detail=f"Redis is unavailable: {exc}",
                        hits=None, misses=None, keys=None)
        return info


@blp.route("/clear")
class CacheClear(MethodView):
    @requires(blp, "admin")
    @blp.response(200, MessageSchema)
    @problem_doc(blp, 503, "Redis is unavailable")
    def post(self):
        """Remove every cached entry of this service (and nothing else in Redis)"""
        removed = runtime().cache.clear()
        return {"message": "Cache cleared successfully", "removed": removed}


@blp.route("/metrics/<name:metric>/clear", merge_slashes=False)  # names may hold "/"
class MetricCacheClear(MethodView):
    @requires(blp, "admin")
    @blp.response(200, MessageSchema)
    @problem_doc(blp, 503, "Redis is unavailable")
    def post(self, metric):
        """Drop the cached results of one metric"""
        cache = runtime().cache
        # Bumping the generation orphans the metric's entries at once; deleting them frees
        # their memory now instead of at expiry.
        cache.bump([metric])
        removed = cache.clear(metric_prefix(metric))
        return {"message": f"Cache cleared for metric: {metric}", "removed": removed}


@blp.route("/keys")
class CacheKeys(MethodView):
    @requires(blp, "read")
    @blp.response(200, CacheKeysSchema)
    @problem_doc(blp, 503, "Redis is unavailable")
    def get(self):
        """This service's cache keys"""
        keys = runtime().cache.keys()
        return {"count": len(keys), "keys": keys}
