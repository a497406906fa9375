"""Statements sent without BEGIN or ROLLBACK around them: each runs alone.

A single statement sees one snapshot by itself: a transaction around a read adds two round
trips (BEGIN before it, ROLLBACK when the connection goes back to the pool) and no
consistency, and a write that is one statement commits by itself, without a COMMIT after it.
psycopg2's own autocommit switch is set on the client alone: begin_alone and end_alone set
it on a DBAPI connection (the writer's small batches, on the pooled connection itself, see
tsapi.store.small_batch), statements_alone on a Connection's (the one-statement rollup
reads). SQLAlchemy's isolation_level="AUTOCOMMIT" would cost a round trip to set and another
to reset, and so does psycopg2's switch while an isolation level is set on the connection
(SQLAlchemy's reset after a REPEATABLE READ read sets one): psycopg2 then SETs the session's
defaults on the server, so that level is dropped first, on the client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2.extensions
from sqlalchemy import Connection


def begin_alone(driver: psycopg2.extensions.connection) -> None:
    """From here on, each statement on the DBAPI connection `driver` runs inside its own
    implicit transaction. Only while no transaction is open (a connection just checked out,
    before its first statement)."""
    if driver.isolation_level is not None:
        driver.set_session(isolation_level="DEFAULT")  # client side: no transaction is open
    driver.autocommit = True


def end_alone(driver: psycopg2.extensions.connection | None) -> None:
    """The DBAPI connection `driver` back in transaction mode, as the pool hands connections
    out (a closed one, lost or invalidated, is discarded anyway)."""
    if driver is not None and not driver.closed and driver.autocommit:
        driver.autocommit = False


@contextmanager
def statements_alone(conn: Connection) -> Iterator[Connection]:
    """`conn`, each statement run inside its own implicit transaction; afterwards `conn` is
    back in transaction mode with no transaction open (its isolation level may then be set).

    Only for a connection just checked out, before its first statement.
    """
    begin_alone(conn.connection.dbapi_connection)
    try:
        yield conn
    finally:
        if not conn.invalidated:
            end_alone(conn.connection.dbapi_connection)
        if conn.in_transaction():
            # SQLAlchemy's own record of the statements' transaction; psycopg2 sends nothing
            # (none is open on the server).
            conn.rollback()
