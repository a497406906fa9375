"""The `tsapi` command: Flask's CLI plus database migrations and sample data."""

from __future__ import annotations

from pathlib import Path

import click
from alembic import command
from alembic.config import Config as AlembicConfig
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from tsapi import create_app  # noqa: F401  (FlaskGroup below calls it)
from tsapi.api.runtime import runtime

SAMPLE_FILE = "sample_data/iot_telemetry_sample.csv"


def _project_file(relative: str) -> Path:
    """A file of the source tree: beside the package (editable install) or in the cwd."""
    for root in (Path(__file__).resolve().parent.parent, Path.cwd()):
        if (root / relative).exists():
            return root / relative
    raise click.ClickException(f"{relative} not found next to the package or in {Path.cwd()}")


def alembic_config(database_url: str | None = None, timescaledb: str | None = None):
    config = AlembicConfig(str(_project_file("alembic.ini")))
    config.attributes["database_url"] = database_url
    config.attributes["timescaledb"] = timescaledb
    return config


@click.group(cls=FlaskGroup, create_app=create_app)
def main() -> None:
    """tsapi: time-series storage and query service."""


def register_commands(app) -> None:
    """Add the commands to app.cli: `tsapi` (FlaskGroup) and test runners both find them."""
    from tsapi.cli.keys import keys
    from tsapi.cli.retention import retention
    from tsapi.cli.rollups import rollups

    app.cli.add_command(db)
    app.cli.add_command(load_sample)
    app.cli.add_command(keys)
    app.cli.add_command(retention)
    app.cli.add_command(rollups)


@click.group()
def db() -> None:
    """Database schema migrations (Alembic)."""


def _config_from_app() -> AlembicConfig:
    return alembic_config(
        current_app.config["DATABASE_URL"], current_app.config["TSAPI_TIMESCALEDB"]
    )


@db.command()
@click.argument("revision", default="head")
@with_appcontext
def upgrade(revision: str) -> None:
    """Migrate the database up to REVISION (default: head)."""
    command.upgrade(_config_from_app(), revision)


@db.command()
@click.argument("revision", default="-1")
@with_appcontext
def downgrade(revision: str) -> None:
    """Migrate the database down to REVISION (default: one step; 'base' for empty)."""
    command.downgrade(_config_from_app(), revision)


@db.command()
@with_appcontext
def current() -> None:
    """Show the database's current revision."""
    command.current(_config_from_app())


@click.command("load-sample")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help=f"A CSV in the telemetry shape (default: {SAMPLE_FILE}).")
@click.option("--max-rows", type=int, default=None, help="Load at most this many rows.")
@click.option("--batch-rows", type=int, default=5000, show_default=True)
@with_appcontext
def load_sample(path: Path | None, max_rows: int | None, batch_rows: int) -> None:
    """Load the sample telemetry CSV (idempotent: points already there are rewritten)."""
    from tsapi.formats.telemetry import read_csv, row_to_points
    from tsapi.services.ingest import ingest_points

    rt = runtime()

    path = path or _project_file(SAMPLE_FILE)
    total = 0
    with path.open(newline="") as f:
        batch: list[dict] = []
        for row in read_csv(f, max_rows):
            batch.extend(row_to_points(row))
            if len(batch) >= batch_rows * 7:
                total += _ingest(ingest_points(rt, batch))
                batch = []
        if batch:
            total += _ingest(ingest_points(rt, batch))
    click.echo(f"Loaded {total} points from {path}")


def _ingest(result) -> int:
    return result.points if result else 0


if __name__ == "__main__":
    main()
