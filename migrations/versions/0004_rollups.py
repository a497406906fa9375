"""Rollups: per-series aggregates of 1-minute and 1-hour buckets, their invalidation log and
watermarks; the rollup tables are hypertables where points is one.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import context, op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
# Level name -> chunk interval of its hypertable: about 10,000 rows per series per chunk.
LEVELS = {"1m": "7 days", "1h": "365 days"}


def _hypertables() -> bool:
    """Follow 0001: hypertables exactly when points became one."""
    if context.get_context().opts.get("timescaledb", "auto") == "off":
        return False
    bind = op.get_bind()
    installed = "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'"
    if not bind.execute(sa.text(installed)).scalar():
        return False
    return bool(bind.execute(sa.text(
        "SELECT count(*) FROM timescaledb_information.hypertables "
        "WHERE hypertable_name = 'points'")).scalar())


def upgrade() -> None:
    hypertables = _hypertables()
    for level, chunk in LEVELS.items():
        table = f"rollups_{level}"
        op.create_table(
            table,
            sa.Column("series_id", sa.BigInteger, nullable=False),
            sa.Column("bucket", TS, nullable=False),
            sa.Column("count", sa.BigInteger, nullable=False),
            sa.Column("sum", sa.Double, nullable=False),
            sa.Column("min", sa.Double, nullable=False),
            sa.Column("max", sa.Double, nullable=False),
            sa.Column("first_time", TS, nullable=False),
            sa.Column("first_value", sa.Double, nullable=False),
            sa.Column("last_time", TS, nullable=False),
            sa.Column("last_value", sa.Double, nullable=False),
            sa.Column("mean", sa.Double, nullable=False),
            sa.Column("m2", sa.Double, nullable=False),
            sa.PrimaryKeyConstraint("series_id", "bucket", name=f"pk_{table}"),
        )
        if hypertables:
            op.execute(sa.text(
                f"SELECT create_hypertable('{table}', 'bucket', "
                "chunk_time_interval => CAST(:chunk AS interval), "
                "create_default_indexes => false)").bindparams(chunk=chunk))
    op.create_table(
        "rollup_invalidations",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("series_id", sa.BigInteger, nullable=False),
        sa.Column("lo", TS, nullable=False),
        sa.Column("hi", TS, nullable=False),
        sa.Column("logged_at", TS, nullable=False, server_default=sa.text("now()")),
        sa.PrimaryKeyConstraint("id", name="pk_rollup_invalidations"),
    )
    op.create_index("ix_rollup_invalidations_series_id", "rollup_invalidations", ["series_id"])
    op.create_table(
        "rollup_watermarks",
        sa.Column("level", sa.Text, nullable=False),
        sa.Column("materialized_until", TS),
        sa.Column("refreshed_at", TS),
        sa.PrimaryKeyConstraint("level", name="pk_rollup_watermarks"),
    )


def downgrade() -> None:
    op.drop_table("rollup_watermarks")
    op.drop_table("rollup_invalidations")
    for level in LEVELS:
        op.drop_table(f"rollups_{level}")
