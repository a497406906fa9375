"""Drop the index on points.time alone.

Every query tsapi runs selects by series first, which (series_id, time) serves; the
time-only index only tempted the planner into walking all series in time order for raw
queries with a LIMIT (ten times slower for one device's day), and cost ingest an index
update per point. TimescaleDB excludes chunks by time without it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_points_time", table_name="points")


def downgrade() -> None:
    op.create_index("ix_points_time", "points", ["time"])
