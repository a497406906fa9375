"""Statements sent without BEGIN or ROLLBACK around them: each runs alone.

A single statement sees one snapshot by itself: a transaction around a read adds two round
trips (BEGIN before it, ROLLBACK when the connection goes back to the pool) and no
consistency, and a write that is one statement commits by itself, without a COMMIT after it.
psycopg2's own autocommit switch is set on the client alone (the writer's small batches, on
the pooled connection itself (tsapi.store.small_batch), and the one-statement rollup reads
use it); SQLAlchemy's isolation_level="AUTOCOMMIT" would cost
a round trip to set and another to reset, and so does psycopg2's switch while an isolation
level is set on the connection (SQLAlchemy's reset after a REPEATABLE READ read sets one):
psycopg2 then SETs the session's defaults on the server, so that level is dropped first,
on the client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection


def begin_alone(conn: Connection) -> None:
    """From here on, each statement on `conn` runs inside its own implicit transaction. Only
    while no transaction is open (a connection just checked out, before its first
    statement)."""
    dbapi = conn.connection.dbapi_connection
    if dbapi.isolation_level is not None:
        dbapi.set_session(isolation_level="DEFAULT")  # client side: no transaction is open
    dbapi.autocommit = True


def end_alone(conn: Connection) -> None:
    """`conn` back in transaction mode, as the pool hands connections out (an invalidated one
    is discarded anyway)."""
    if conn.invalidated:
        return
    dbapi = conn.connection.dbapi_connection
    if dbapi is not None and not dbapi.closed and dbapi.autocommit:
        dbapi.autocommit = False


@contextmanager
def statements_alone(conn: Connection) -> Iterator[Connection]:
    """`conn`, each statement run inside its own implicit transaction; afterwards `conn` is
    back in transaction mode with no transaction open (its isolation level may then be set).

    Only for a connection just checked out, before its first statement.
    """
    begin_alone(conn)
    try:
        yield conn
    finally:
        end_alone(conn)
        if conn.in_transaction():
            # SQLAlchemy's own record of the statements' transaction; psycopg2 sends nothing
            # (none is open on the server).
            conn.rollback()
