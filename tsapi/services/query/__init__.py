"""Queries: a typed request, planned (planner), run on the store (execute), shaped (rendering).

request.py   the QueryRequest the HTTP schema builds
limits.py    buckets per range, rows per page
planner.py   request -> plan: a raw page, buckets, or a streamed export
cursor.py    raw-page cursors, tied to the query that issued them
cache_keys   response-cache keys
execute.py   a plan's statements run, its rows rendered
one_statement  a rollup answer that is one statement alone (no lookup, no transaction)
use_case.py  run_query: all of the above, answered from the cache when fresh
"""

from tsapi.services.query.request import QueryRequest
from tsapi.services.query.use_case import run_query

__all__ = ["QueryRequest", "run_query"]
