"""Which time zone names a query may use: the IANA names, as both Python and PostgreSQL read them.

Python's zoneinfo loads any file under the tz database directory, including the leap-second
variants (`right/UTC`) and `posix/` copies; PostgreSQL reads some of those differently or not at
all, and a zone it refuses fails the statement. The safe rule is the database's own list of
zone names, which leaves those variants out (zoneinfo.available_timezones). It is read once.
"""

from __future__ import annotations

import zoneinfo
from functools import cache

from tsapi.formats.names import name_problem


@cache
def _zone_names() -> frozenset[str]:
    # `localtime`, where tzdata installs it, links to /etc/localtime: whatever zone each host
    # runs in, read by Python on the API's host and by PostgreSQL on the database's.
    return frozenset(zoneinfo.available_timezones()) - {"localtime"}


def timezone_problem(name: str) -> str | None:
    """Why `name` cannot be a query's time zone, or None when it can."""
    problem = name_problem(name)
    if problem:
        return problem
    if name not in _zone_names():
        return f"'{name[:64]}' is not an IANA time zone name"
    return None
