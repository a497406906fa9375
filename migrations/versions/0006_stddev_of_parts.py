"""Rollups: an aggregate combining partial (count, sum, M2) states into a sample standard
deviation with PostgreSQL's own combine step (float8_combine, then float8_stddev_samp).

The rollup path combined M2 with float8 operators, which raise "value out of range:
underflow" where a product of subnormal deviations rounds to zero; the raw path's
stddev_samp never does (its C arithmetic has no such check), so the same question answered
there and failed on the rollup path. float8_combine is the step PostgreSQL itself uses to
merge parallel workers' stddev states: it computes Chan et al.'s update without that check.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A fixed statement: no input reaches it.
    op.execute("""
        CREATE AGGREGATE tsapi_stddev_of_parts(double precision[]) (
            SFUNC = float8_combine,
            STYPE = double precision[],
            INITCOND = '{0,0,0}',
            FINALFUNC = float8_stddev_samp,
            COMBINEFUNC = float8_combine,
            PARALLEL = SAFE
        )""")


def downgrade() -> None:
    op.execute("DROP AGGREGATE tsapi_stddev_of_parts(double precision[])")
