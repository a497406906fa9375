"""Reads that are one statement each, sent without BEGIN or ROLLBACK around them.

A single statement sees one snapshot by itself: a transaction around it adds two round
trips (BEGIN before it, ROLLBACK when the connection goes back to the pool) and no
consistency. psycopg2's own autocommit switch is set on the client alone, as the writer's
small batches do (tsapi.store.writer); SQLAlchemy's isolation_level="AUTOCOMMIT" would cost
a round trip to set and another to reset, and so does psycopg2's switch while an isolation
level is set on the connection (SQLAlchemy's reset after a REPEATABLE READ read sets one):
psycopg2 then SETs the session's defaults on the server, so that level is dropped first,
on the client.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection


@contextmanager
def statements_alone(conn: Connection) -> Iterator[Connection]:
    """`conn`, each statement run inside its own implicit transaction; afterwards `conn` is
    back in transaction mode with no transaction open (its isolation level may then be set).

    Only for a connection just checked out, before its first statement.
    """
    dbapi = conn.connection.dbapi_connection
    if dbapi.isolation_level is not None:
        dbapi.set_session(isolation_level="DEFAULT")  # client side: no transaction is open
    dbapi.autocommit = True
    try:
        yield conn
    finally:
        if not conn.invalidated and not dbapi.closed:
            dbapi.autocommit = False
        if conn.in_transaction():
            # SQLAlchemy's own record of the statements' transaction; psycopg2 sends nothing
            # (none is open on the server).
            conn.rollback()
