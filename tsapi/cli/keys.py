"""`tsapi keys`: create, list and revoke API keys."""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from redis.exceptions import RedisError

from tsapi.api.runtime import runtime
from tsapi.services.api_keys import MAX_AGE_SECONDS
from tsapi.store.keys import KeyNameTaken, create_key, list_keys, revoke_key
from tsapi.store.schema import SCOPES


@click.group()
def keys() -> None:
    """API keys (scopes: read, write, admin; admin implies the others)."""


@keys.command()
@click.option("--name", required=True, help="Who uses the key, e.g. sensor-gw (unique).")
@click.option("--scope", "scopes", required=True, multiple=True, type=click.Choice(SCOPES),
              help="Repeat for several, e.g. --scope read --scope write.")
@with_appcontext
def create(name: str, scopes: tuple[str, ...]) -> None:
    """Create a key and print its token (shown this once; only its hash is stored)."""
    try:
        with runtime().db.engine.begin() as conn:
            key, token = create_key(conn, name, set(scopes))
    except KeyNameTaken:
        raise click.ClickException(f"a key named {name!r} already exists") from None
    click.echo(f"Created key {key.id} {name!r} with scopes {','.join(sorted(key.scopes))}.",
               err=True)
    click.echo("Its token is shown only now; send it as `Authorization: Bearer <token>`:",
               err=True)
    click.echo(token)


def _when(value) -> str:
    return value.isoformat(timespec="seconds") if value else "-"


@keys.command("list")
@with_appcontext
def list_() -> None:
    """List keys: id, name, scopes, created, last used (to the minute), revoked."""
    with runtime().db.engine.connect() as conn:
        rows = list_keys(conn)
    click.echo(f"{'id':>4}  {'name':<24} {'scopes':<17} {'created':<25} {'last used':<25} "
               "revoked")
    for r in rows:
        click.echo(f"{r['id']:>4}  {r['name']:<24} {','.join(r['scopes']):<17} "
                   f"{_when(r['created_at']):<25} {_when(r['last_used_at']):<25} "
                   f"{_when(r['revoked_at'])}")


@keys.command()
@click.argument("key")
@with_appcontext
def revoke(key: str) -> None:
    """Revoke KEY (its id or name); requests with it get 401 from then on."""
    with runtime().db.engine.begin() as conn:
        name = revoke_key(conn, key)
    if name is None:
        raise click.ClickException(f"no live key with id or name {key!r}")
    try:
        runtime().keys.revoked()  # every worker refuses it within a second
    except RedisError as exc:
        raise click.ClickException(
            f"revoked key {name!r} in the database, but could not tell the servers through "
            f"Redis ({exc}); servers that still reach Redis may accept it for up to "
            f"{MAX_AGE_SECONDS:.0f} s") from None
    click.echo(f"Revoked key {name!r}")
