"""`tsapi retention apply`: delete points older than a cut, globally or per metric."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click
from flask.cli import with_appcontext

from tsapi.api.runtime import runtime
from tsapi.formats.intervals import IntervalError, parse_interval
from tsapi.services.retention import apply_retention_policy


def parse_age(raw: str) -> timedelta:
    """'90d', '12h', '2 weeks': a fixed length (months and years vary, so they are refused)."""
    try:
        interval = parse_interval(raw)
    except IntervalError as exc:
        raise click.BadParameter(f"{raw!r}: {exc}") from None
    if interval.is_monthly:
        raise click.BadParameter(f"{raw!r}: months and years vary in length; use days")
    return interval.as_timedelta()


def parse_override(raw: str) -> tuple[str, timedelta]:
    name, sep, age = raw.rpartition("=")
    if not sep or not name:
        raise click.BadParameter(f"{raw!r}: expected NAME=AGE, e.g. temperature=30d")
    return name, parse_age(age)


@click.group()
def retention() -> None:
    """Data retention: remove old points."""


@retention.command()
@click.option("--older-than", "older_than", help="Remove every metric's points older than "
              "this age (e.g. 90d), except metrics given with --metric.")
@click.option("--metric", "overrides", multiple=True, metavar="NAME=AGE",
              help="Keep this metric's points for AGE instead (shorter or longer); repeat.")
@with_appcontext
def apply(older_than: str | None, overrides: tuple[str, ...]) -> None:
    """Delete old points, then recompute each affected metric's first/last seen.

    A metric left without points keeps its name and type, with first/last seen empty.
    """
    if older_than is None and not overrides:
        raise click.UsageError("give --older-than AGE and/or --metric NAME=AGE")
    now = datetime.now(UTC)
    cut = now - parse_age(older_than) if older_than else None
    per_metric = {}
    for raw in overrides:
        name, age = parse_override(raw)
        per_metric[name] = now - age
    report = apply_retention_policy(runtime(), cut, per_metric)
    if cut is not None:
        click.echo(f"cut for all other metrics: points before {cut.isoformat()}")
    if report.chunks_dropped:
        click.echo(f"dropped {len(report.chunks_dropped)} chunks (TimescaleDB)")
    for name, rows in report.rows_deleted.items():
        label = "other metrics" if name == "*" else name
        when = cut if name == "*" else per_metric[name]
        click.echo(f"deleted {rows} points of {label} before {when.isoformat()}")
    missing = sorted(set(per_metric) - set(report.rows_deleted))
    for name in missing:
        click.echo(f"no metric named {name!r}", err=True)
    click.echo(f"first/last seen recomputed for {len(report.recomputed)} metrics"
               + (f": {', '.join(report.recomputed)}" if report.recomputed else ""))
