"""Alembic environment: the app's own tables and the app's own database URL."""

from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool

from tsapi.config import load_config, normalize_database_url
from tsapi.store.schema import metadata

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = metadata


def _settings() -> dict:
    """Settings from the environment, overridden by what `tsapi db` passes in attributes."""
    overrides = {}
    if config.attributes.get("database_url"):
        overrides["DATABASE_URL"] = config.attributes["database_url"]
    if config.attributes.get("timescaledb"):
        overrides["TSAPI_TIMESCALEDB"] = config.attributes["timescaledb"]
    return load_config(overrides)


def run_migrations_offline() -> None:
    settings = _settings()
    context.configure(
        url=normalize_database_url(settings["DATABASE_URL"]),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        timescaledb=settings["TSAPI_TIMESCALEDB"],
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    settings = _settings()
    engine = create_engine(
        normalize_database_url(settings["DATABASE_URL"]), poolclass=pool.NullPool
    )
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            timescaledb=settings["TSAPI_TIMESCALEDB"],  # read by the migrations from opts
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
