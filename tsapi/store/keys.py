"""API keys: creating, finding, listing and revoking them; only token hashes are stored."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from tsapi.store.schema import api_keys

TOKEN_PREFIX = "tsapi_"
# A key's last_used_at is rewritten at most this often: a busy key costs no write per request.
LAST_USED_RESOLUTION_SECONDS = 60


class KeyNameTaken(ValueError):
    """Another key (perhaps a revoked one) already has this name."""


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    scopes: frozenset[str]


def token_hash(token: str) -> str:
    """What is stored of a token, and what the key cache (tsapi.services.api_keys) is keyed by."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_key(conn: Connection, name: str, scopes: set[str]) -> tuple[ApiKey, str]:
    """Store a new key; returns it and its token, which exists nowhere else afterwards."""
    prefix = secrets.token_hex(6)
    token = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    try:
        with conn.begin_nested():
            key_id = conn.execute(
                insert(api_keys)
                .values(name=name, prefix=prefix, token_hash=token_hash(token),
                        scopes=sorted(scopes))
                .returning(api_keys.c.id)
            ).scalar_one()
    except IntegrityError:
        raise KeyNameTaken(name) from None
    return ApiKey(key_id, name, frozenset(scopes)), token


# Tokens are made of these; anything else (a NUL, say) is no token, not a database error.
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_-]+")


def find_key(conn: Connection, token: str) -> ApiKey | None:
    """The live key this token belongs to, or None (unknown, malformed or revoked alike)."""
    if not token.startswith(TOKEN_PREFIX) or not _TOKEN_CHARS.fullmatch(token):
        return None
    prefix, _, secret = token[len(TOKEN_PREFIX):].partition("_")
    if not prefix or not secret:
        return None
    row = conn.execute(
        select(api_keys.c.id, api_keys.c.name, api_keys.c.scopes, api_keys.c.token_hash)
        .where(api_keys.c.prefix == prefix, api_keys.c.revoked_at.is_(None))
    ).first()
    # compare_digest: the time taken does not tell how much of a guessed hash matched.
    if row is None or not hmac.compare_digest(row.token_hash, token_hash(token)):
        return None
    return ApiKey(row.id, row.name, frozenset(row.scopes))


def touch_keys(conn: Connection, ids: list[int]) -> None:
    """Record that these keys were used: last_used_at = now, unless already set within the
    last LAST_USED_RESOLUTION_SECONDS (a busy key costs no write per use)."""
    conn.execute(
        update(api_keys)
        .where(api_keys.c.id.in_(ids))
        .where(or_(api_keys.c.last_used_at.is_(None),
                   api_keys.c.last_used_at <= func.now() - func.make_interval(
                       0, 0, 0, 0, 0, 0, LAST_USED_RESOLUTION_SECONDS)))
        .values(last_used_at=func.now())
    )


def list_keys(conn: Connection) -> list[dict]:
    rows = conn.execute(
        select(api_keys.c.id, api_keys.c.name, api_keys.c.scopes, api_keys.c.created_at,
               api_keys.c.last_used_at, api_keys.c.revoked_at).order_by(api_keys.c.id)
    )
    return [dict(r._mapping) for r in rows]


def revoke_key(conn: Connection, id_or_name: str) -> str | None:
    """Revoke a key by name, else by id; returns its name, or None if no live key matches."""
    matches = [api_keys.c.name == id_or_name]
    if id_or_name.isdigit():
        matches.append(api_keys.c.id == int(id_or_name))
    for match in matches:
        name = conn.execute(
            update(api_keys)
            .where(match, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=func.now())
            .returning(api_keys.c.name)
        ).scalar()
        if name is not None:
            return name
    return None

