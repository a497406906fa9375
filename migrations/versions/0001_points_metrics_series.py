"""Metrics, series and points; points a TimescaleDB hypertable where the extension is there.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _use_timescaledb(mode: str) -> bool:
    """auto: use the extension if the server can load it; on: insist; off: plain tables."""
    if mode == "off":
        return False
    bind = op.get_bind()
    installed = bind.execute(
        sa.text("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
    ).scalar()
    available = bind.execute(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
    ).scalar()
    preloaded = "timescaledb" in bind.execute(sa.text("SHOW shared_preload_libraries")).scalar()
    usable = bool(installed or (available and preloaded))
    if mode == "on" and not usable:
        raise RuntimeError(
            "TSAPI_TIMESCALEDB=on but this server cannot load TimescaleDB (it must be "
            "installed and in shared_preload_libraries); use auto or off for plain PostgreSQL"
        )
    return usable


def upgrade() -> None:
    mode = context.get_context().opts.get("timescaledb", "auto")
    timescaledb = _use_timescaledb(mode)
    if timescaledb:
        op.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")

    op.create_table(
        "metrics",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("value_type", sa.Text, nullable=False),
        sa.Column("first_seen", TS),
        sa.Column("last_seen", TS),
        sa.Column("created_at", TS, nullable=False, server_default=sa.text("now()")),
        sa.CheckConstraint("value_type IN ('number', 'string')",
                           name="ck_metrics_value_type"),
        sa.PrimaryKeyConstraint("id", name="pk_metrics"),
        sa.UniqueConstraint("name", name="uq_metrics_name"),
    )
    op.create_table(
        "series",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("metric_id", sa.BigInteger, nullable=False),
        sa.Column("tags", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.PrimaryKeyConstraint("id", name="pk_series"),
        sa.ForeignKeyConstraint(["metric_id"], ["metrics.id"], ondelete="CASCADE",
                                name="fk_series_metric_id_metrics"),
    )
    op.create_index("ix_series_metric_id_tags", "series", ["metric_id", "tags"], unique=True)
    op.create_index("ix_series_tags", "series", ["tags"], postgresql_using="gin")
    op.create_table(
        "points",
        sa.Column("time", TS, nullable=False),
        sa.Column("series_id", sa.BigInteger, nullable=False),
        sa.Column("value_num", sa.Double),
        sa.Column("value_text", sa.Text),
        sa.CheckConstraint("(value_num IS NULL) <> (value_text IS NULL)",
                           name="ck_points_one_value"),
    )
    op.create_index("ix_points_series_id_time", "points", ["series_id", "time"], unique=True)
    op.create_index("ix_points_time", "points", ["time"])
    if timescaledb:
        # One-day chunks: a day of a busy IoT fleet fits in memory, and retention can drop
        # whole days. The indexes above are the only ones needed.
        op.execute(
            "SELECT create_hypertable('points', 'time', "
            "chunk_time_interval => INTERVAL '1 day', create_default_indexes => false)"
        )


def downgrade() -> None:
    # The extension stays: it belongs to the database and other tables may use it.
    op.drop_table("points")
    op.drop_table("series")
    op.drop_table("metrics")
