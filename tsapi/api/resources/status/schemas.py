"""Schemas of / and /health."""

import marshmallow as ma


class RootSchema(ma.Schema):
    message = ma.fields.String(metadata={"example": "Super-Simple Timeseries API Service"})
    version = ma.fields.String()
    redis_status = ma.fields.String(metadata={"enum": ["connected", "disconnected"]})
    docs = ma.fields.String(metadata={"example": "/docs"})
    openapi = ma.fields.String()
    links = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())


class ReplicaSchema(ma.Schema):
    status = ma.fields.String(metadata={
        "enum": ["healthy", "lagging", "unhealthy", "not configured"],
        "description": "healthy: serves reads; lagging: behind by more than "
                       "TSAPI_MAX_REPLICA_LAG; unhealthy: unreachable or not a standby"})
    lag_seconds = ma.fields.Float(allow_none=True)
    error = ma.fields.String()


class RollupLevelSchema(ma.Schema):
    materialized_until = ma.fields.DateTime(allow_none=True, metadata={
        "description": "every bucket of this level ending by then is materialized"})
    lag_seconds = ma.fields.Float(allow_none=True, metadata={
        "description": "now minus materialized_until: the head queries read raw"})


class RollupHealthSchema(ma.Schema):
    levels = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(RollupLevelSchema))
    pending_invalidations = ma.fields.Integer(metadata={
        "description": "logged changes the refresher has not consumed yet"})
    oldest_pending_seconds = ma.fields.Float(allow_none=True)


class HealthSchema(ma.Schema):
    status = ma.fields.String(metadata={"enum": ["healthy", "degraded", "unhealthy"]})
    database = ma.fields.String(metadata={"enum": ["healthy", "unhealthy"]})
    redis = ma.fields.String(metadata={"enum": ["healthy", "unhealthy", "not configured"]})
    storage = ma.fields.String(metadata={"enum": ["timescaledb", "postgresql"]})
    timescaledb_version = ma.fields.String(allow_none=True)
    hypertable = ma.fields.Boolean()
    postgres_version = ma.fields.String()
    replica = ma.fields.Nested(ReplicaSchema, metadata={
        "description": "the read replica (DATABASE_READ_URL); reads skip it unless healthy"})
    version = ma.fields.String()
    rollups = ma.fields.Nested(RollupHealthSchema, metadata={
        "description": "refresh lag per level and pending invalidations (`tsapi rollups run`)"})
