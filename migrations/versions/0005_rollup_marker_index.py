"""Rollups: a partial index on the marker rows (count 0: buckets holding a value too large
to combine, read raw), so each rollup read finds them with one index probe per series.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

LEVELS = ("1m", "1h")


def upgrade() -> None:
    for level in LEVELS:
        op.create_index(f"ix_rollups_{level}_unmaterialized", f"rollups_{level}",
                        ["series_id", "bucket"], postgresql_where=sa.text("count = 0"))


def downgrade() -> None:
    for level in LEVELS:
        op.drop_index(f"ix_rollups_{level}_unmaterialized", table_name=f"rollups_{level}")
