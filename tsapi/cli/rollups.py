"""`tsapi rollups refresh | run | rebuild`: keep the rollup tables up to date."""

from __future__ import annotations

import signal
import threading
from datetime import timedelta

import click
from flask import current_app
from flask.cli import with_appcontext

from tsapi.api.runtime import runtime
from tsapi.errors import NotFound
from tsapi.services.rollups import rebuild_rollups, refresh_rollups, run_refresher


def _lag() -> timedelta:
    return timedelta(seconds=current_app.config["TSAPI_ROLLUP_LAG_SECONDS"])


def _echo(report) -> None:
    click.echo(f"{report.steps} transactions, {report.invalidations} invalidations consumed")
    for level, mark in sorted(report.watermarks.items()):
        click.echo(f"rollup-{level}: materialized until "
                   f"{mark.isoformat() if mark else 'nothing yet'}")


@click.group()
def rollups() -> None:
    """Rollup tables: long-range aggregates without reading every point."""


@rollups.command()
@with_appcontext
def refresh() -> None:
    """Refresh once: materialize closed buckets, consume logged changes, then exit."""
    _echo(refresh_rollups(runtime(), _lag()))


@rollups.command()
@with_appcontext
def run() -> None:
    """Keep refreshing until SIGTERM or SIGINT (TSAPI_ROLLUP_INTERVAL_SECONDS apart)."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    click.echo("rollup refresher running")
    run_refresher(runtime(), _lag(), current_app.config["TSAPI_ROLLUP_INTERVAL_SECONDS"], stop)
    click.echo("rollup refresher stopped")


@rollups.command()
@click.option("--metric", default=None, help="Only this metric's buckets (default: all).")
@with_appcontext
def rebuild(metric: str | None) -> None:
    """Materialize existing data again, a day per transaction."""
    try:
        _echo(rebuild_rollups(runtime(), _lag(), metric))
    except NotFound as exc:
        raise click.ClickException(str(exc)) from None
