"""Rollups: a function reading the points of some series in a time range, planned with each
call's values, so that a statement kept with a generic plan can read a range's raw edges.

A generic plan of a statement reading points by time bounds known only at run time holds
every chunk of the points hypertable (a year of daily chunks took ~150 ms to plan, and each
run then excluded the chunks one by one); so the rollup answer of a range off the level's
boundaries was planned anew with its values on every request (~1.3 ms, most of its time in
the database). Called from such a statement, this function's query is planned on each call
with the values it is given (plan_cache_mode, set for the call alone): TimescaleDB then
plans only the chunks the range overlaps, as it does for a statement sent with constants.
STABLE: it reads in the calling statement's snapshot.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A fixed statement: no input reaches it. The columns are qualified: the names of the
    # result's columns are also variables in the function's body.
    op.execute("""
        CREATE FUNCTION tsapi_points_between(series_ids bigint[], lo timestamptz,
                                             hi timestamptz)
        RETURNS TABLE ("time" timestamptz, series_id bigint, value_num double precision)
        LANGUAGE plpgsql STABLE PARALLEL SAFE
        SET plan_cache_mode = force_custom_plan
        AS $$
        BEGIN
            RETURN QUERY SELECT p.time, p.series_id, p.value_num FROM points AS p
                WHERE p.series_id = ANY(series_ids) AND p.time >= lo AND p.time < hi;
        END
        $$""")


def downgrade() -> None:
    op.execute("DROP FUNCTION tsapi_points_between(bigint[], timestamptz, timestamptz)")
