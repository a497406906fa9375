"""Table definitions: the one MetaData that the app queries and Alembic migrates."""

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Index,
    MetaData,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

VALUE_TYPES = ("number", "string")

metrics = Table(
    "metrics",
    metadata,
    # Identity never hands out an id twice, which is what lets ingest cache ids per process.
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("value_type", Text, nullable=False),
    Column("first_seen", DateTime(timezone=True)),
    Column("last_seen", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    CheckConstraint("value_type IN ('number', 'string')", name="value_type"),
)

series = Table(
    "series",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column(
        "metric_id",
        BigInteger,
        ForeignKey("metrics.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # jsonb compares objects regardless of key order, so one tag set is one row.
    Column("tags", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Index(None, "metric_id", "tags", unique=True),
    Index("ix_series_tags", "tags", postgresql_using="gin"),
)

# No foreign key to series: a per-row check would cost ingest a fifth of its speed, and
# series rows are only ever deleted together with their points (see store.catalog).
points = Table(
    "points",
    metadata,
    Column("time", DateTime(timezone=True), nullable=False),
    Column("series_id", BigInteger, nullable=False),
    Column("value_num", Double),
    Column("value_text", Text),
    CheckConstraint("(value_num IS NULL) <> (value_text IS NULL)", name="one_value"),
    # Unique on (series, time): a point written twice is stored once. It includes the time
    # column, as a hypertable's unique indexes must.
    Index(None, "series_id", "time", unique=True),
    # No index on time alone: every query selects series first (see migration 0002).
)

SCOPES = ("read", "write", "admin")

# API keys: the token itself is never stored, only its SHA-256. The prefix is a public,
# random lookup id (part of the token), so the hash is compared in constant time in Python.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("prefix", Text, nullable=False, unique=True),
    Column("token_hash", Text, nullable=False),
    Column("scopes", ARRAY(Text), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("last_used_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    CheckConstraint("scopes <@ ARRAY['read', 'write', 'admin'] AND cardinality(scopes) > 0",
                    name="scopes"),
)


# Values up to this magnitude combine without overflow (rollup_refresh says why). A bucket
# holding a larger one is stored as a marker row whose count is UNMATERIALIZED, and readers
# take its points raw.
MATERIALIZABLE = 1e130
UNMATERIALIZED = 0


def _rollup_table(level: str) -> Table:
    """Per series and bucket (UTC), what makes every combinable aggregation exact: count, sum,
    min, max, first and last with their times, and mean and M2 (sum of squared deviations
    from the mean), which combine stably across buckets (Chan et al.)."""
    return Table(
        f"rollups_{level}",
        metadata,
        Column("series_id", BigInteger, primary_key=True),
        Column("bucket", DateTime(timezone=True), primary_key=True),
        Column("count", BigInteger, nullable=False),
        Column("sum", Double, nullable=False),
        Column("min", Double, nullable=False),
        Column("max", Double, nullable=False),
        Column("first_time", DateTime(timezone=True), nullable=False),
        Column("first_value", Double, nullable=False),
        Column("last_time", DateTime(timezone=True), nullable=False),
        Column("last_value", Double, nullable=False),
        Column("mean", Double, nullable=False),
        Column("m2", Double, nullable=False),
        # Readers look up marker rows (count UNMATERIALIZED) in every range they answer.
        Index(f"ix_rollups_{level}_unmaterialized", "series_id", "bucket",
              postgresql_where=text("count = 0")),
    )


# One table per level of tsapi.config.ROLLUP_LEVELS, by its name.
rollup_tables = {level: _rollup_table(level) for level in ("1m", "1h")}

# What writes changed since the refresher last looked: per series, a time range (both ends
# included). A reader treats every rollup bucket a pending entry touches as stale.
rollup_invalidations = Table(
    "rollup_invalidations",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("series_id", BigInteger, nullable=False),
    Column("lo", DateTime(timezone=True), nullable=False),
    Column("hi", DateTime(timezone=True), nullable=False),
    Column("logged_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Index(None, "series_id"),
)

# Per level: every bucket that ends at or before materialized_until is in the rollup table
# (for every series), unless a pending invalidation touches it.
rollup_watermarks = Table(
    "rollup_watermarks",
    metadata,
    Column("level", Text, primary_key=True),
    Column("materialized_until", DateTime(timezone=True)),
    Column("refreshed_at", DateTime(timezone=True)),
)
