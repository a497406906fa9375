"""Schemas of /cache."""

import marshmallow as ma


class CacheInfoSchema(ma.Schema):
    status = ma.fields.String(metadata={"enum": ["connected", "disconnected"]})
    backend = ma.fields.String(metadata={"enum": ["redis", "in-process"]})
    hits = ma.fields.Integer(allow_none=True)
    misses = ma.fields.Integer(allow_none=True)
    keys = ma.fields.Integer(allow_none=True)
    used_memory = ma.fields.Integer(allow_none=True)
    used_memory_human = ma.fields.String(allow_none=True)
    redis_version = ma.fields.String(allow_none=True)
    default_timeout = ma.fields.Integer()
    detail = ma.fields.String()


class MessageSchema(ma.Schema):
    message = ma.fields.String()
    removed = ma.fields.Integer()


class CacheKeysSchema(ma.Schema):
    count = ma.fields.Integer()
    keys = ma.fields.List(ma.fields.String())
