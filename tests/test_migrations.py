"""Alembic: upgrade and downgrade on TimescaleDB and on plain PostgreSQL."""

import pytest
import sqlalchemy as sa
from alembic import command
from conftest import migrate

from tsapi.cli import alembic_config

TABLES = {"metrics", "series", "points", "api_keys"}


def _tables(url):
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names()) & TABLES
    finally:
        engine.dispose()


def _scalar(url, sql):
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()
    finally:
        engine.dispose()


@pytest.mark.parametrize("mode", ["on", "off"])
def test_upgrade_downgrade_upgrade(pg_server, mode):
    url = pg_server.create_database(f"migrate_{mode}")
    try:
        migrate(url, mode)
        assert _tables(url) == TABLES
        hypertables = _scalar(
            url,
            "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'",
        )
        assert hypertables == (1 if mode == "on" else 0)

        config = alembic_config(url, mode)
        config.attributes["configure_logger"] = False
        command.downgrade(config, "base")
        assert _tables(url) == set()

        migrate(url, mode)
        assert _tables(url) == TABLES
    finally:
        pg_server.drop_database(f"migrate_{mode}")


def test_points_is_a_hypertable_with_timescaledb(database_urls):
    count = _scalar(
        database_urls["timescaledb"],
        "SELECT count(*) FROM timescaledb_information.hypertables "
        "WHERE hypertable_name = 'points'",
    )
    assert count == 1


def test_plain_database_has_no_extension(database_urls):
    count = _scalar(
        database_urls["postgresql"],
        "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'",
    )
    assert count == 0


def test_auto_mode_falls_back_to_plain_tables_without_preload(tmp_path):
    from services import PostgresServer

    server = PostgresServer(preload_timescaledb=False)
    server.start()
    try:
        url = server.create_database("auto_plain")
        migrate(url, "auto")
        assert _tables(url) == TABLES
        assert _scalar(url, "SELECT count(*) FROM pg_extension "
                            "WHERE extname = 'timescaledb'") == 0
        with pytest.raises(RuntimeError, match="cannot load TimescaleDB"):
            migrate(server.create_database("must_have"), "on")
    finally:
        server.cleanup()


def test_schema_matches_the_app_tables(database_urls):
    """The migration and tsapi.store.schema describe the same tables (no drift)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from tsapi.store.schema import metadata

    for url in database_urls.values():
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        engine.dispose()
        assert diff == [], diff
