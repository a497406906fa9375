"""Kept statements prepared on the server once per session, then only EXECUTEd.

Parsing and planning a one-statement rollup answer costs the database ~0.7 ms; running it
over a day of hourly rows ~0.1 ms. Prepared, the server plans it once per session, a generic
plan (the sessions' plan_cache_mode, tsapi.store.engine.PLAN_CACHE_MODE); TimescaleDB then
excludes the hypertable's chunks outside the range when the plan starts (not while
planning), and a chunk created later invalidates the plan (it changes the hypertable).

A prepared statement lives as long as its session (the pool's per-connection `info` is
cleared when the connection is replaced, so a new session prepares it again), as the
writer's small batches do (tsapi.store.small_batch). A session that lost it (DISCARD ALL,
DEALLOCATE) prepares it again, once, when the statement runs outside a transaction; inside
one, the failure has undone the transaction, so PreparedStatementLost tells the caller to
start it again (the session then prepares anew).
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from psycopg2 import errors as pg_errors
from sqlalchemy import JSON, Connection, Executable, bindparam, column, select, table, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement

_NAMES = itertools.count(1)  # a name is never reused for other text in a process
_SESSION_KEY = "tsapi_prepared"  # the names prepared in a session (the pool's `info`)
MAX_PER_SESSION = 256  # then the session's are deallocated, and prepared again when used
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
_PREPARED = table("pg_prepared_statements", column("name"))


class PreparedStatementLost(Exception):
    """The session lost a prepared statement inside a transaction, which is now undone: run
    the transaction again (once) from its start."""


class PreparedStatement:
    """`stmt` compiled once for `conn`'s dialect; `execute` runs it with named values."""

    def __init__(self, stmt: ClauseElement, conn: Connection):
        compiled = stmt.compile(dialect=conn.dialect)
        binds = {name: bp for bp, name in compiled.bind_names.items()}
        order: dict[str, int] = {}
        for name in _PLACEHOLDER.findall(compiled.string):
            order.setdefault(name, len(order) + 1)
        sql = _PLACEHOLDER.sub(lambda m: f"${order[m[1]]}", compiled.string).replace("%%", "%")
        self.name = f"tsapi_kept_{next(_NAMES)}"
        types = ", ".join(_type_name(binds[n].type, conn) for n in order)
        self._prepare = f"PREPARE {self.name} ({types}) AS {sql}"
        # The values fixed in the statement (literals); the named ones come with each run.
        self._defaults = {n: bp.effective_value for n, bp in binds.items() if not bp.required}
        self._execute: Executable = text(
            f"EXECUTE {self.name} ({', '.join(':' + n for n in order)})"
        ).bindparams(*(bindparam(n, type_=binds[n].type) for n in order))

    def execute(self, conn: Connection, params: dict[str, Any]):
        """The result of running it on `conn` (prepared there first if need be)."""
        prepared = conn.connection.info.setdefault(_SESSION_KEY, set())
        if self.name not in prepared:
            if len(prepared) >= MAX_PER_SESSION:
                # Statements of shapes no longer kept would otherwise pile up in the session.
                _deallocate(conn, prepared)
            _send(conn, self._prepare)
            prepared.add(self.name)
        values = {**self._defaults, **params}
        try:
            return conn.execute(self._execute, values)
        except DBAPIError as exc:
            if not isinstance(exc.orig, pg_errors.InvalidSqlStatementName):
                raise
            prepared.clear()  # whatever took this one (DISCARD ALL, say) took them all
            if not conn.connection.dbapi_connection.autocommit:
                # In a transaction the error undid it all: only the caller can start again.
                # The pool's other sessions may have lost theirs too, and the caller's next
                # try may get one of them: sessions opened anew prepare (as the writer does).
                conn.engine.dispose()
                raise PreparedStatementLost(self.name) from exc
        _send(conn, self._prepare)
        prepared.add(self.name)
        return conn.execute(self._execute, values)


def _deallocate(conn: Connection, prepared: set[str]) -> None:
    """DEALLOCATE the session's statements that are still there: one it lost (DISCARD ALL,
    DEALLOCATE) would fail the whole list."""
    held = conn.execute(
        select(_PREPARED.c.name).where(_PREPARED.c.name.in_(sorted(prepared)))
    ).scalars().all()
    if held:
        _send(conn, "; ".join(f"DEALLOCATE {name}" for name in sorted(held)))
    prepared.clear()


def _send(conn: Connection, sql: str) -> None:
    # Sent as it is: psycopg2 would read its % signs as placeholders.
    conn.exec_driver_sql(sql, execution_options={"no_parameters": True})


def _type_name(type_, conn: Connection) -> str:
    # A JSON path element (tags[key]) has no type of its own in SQL: its key is text.
    if isinstance(type_, JSON.JSONStrIndexType):
        return "TEXT"
    if isinstance(type_, JSON.JSONIntIndexType):
        return "INTEGER"
    return type_.compile(dialect=conn.dialect)
