"""InfluxDB 1.x's /query: InfluxQL statements run on tsapi's own query path and catalog.

run_influxql parses the whole text first (a syntax error answers for the whole request, as
InfluxDB does), then runs each statement; a statement's error is reported in its result.
"""

from __future__ import annotations

import time
from typing import Any

from tsapi.errors import TsapiError
from tsapi.formats.influxql import ast, parse_query
from tsapi.formats.influxql.tokens import InfluxQLError
from tsapi.services.influxql.catalog import Catalog
from tsapi.services.influxql.select import run_select
from tsapi.services.influxql.show import run_show
from tsapi.services.influxql.source import QueryLoader, QuerySource, RowBudget
from tsapi.services.runtime import Runtime


def run_influxql(rt: Runtime, text: str, *, database: str | None, epoch: str | None,
                 load: QueryLoader, now_ns: int | None = None) -> dict[str, Any]:
    """{"results": [...]} for the statements of `text`; ParseError for a syntax error."""
    statements = parse_query(text)
    now = time.time_ns() if now_ns is None else now_ns
    catalog = Catalog(rt)
    budget = RowBudget(max(rt.limits.max_raw_rows, rt.limits.max_query_cells))
    results = []
    for index, stmt in enumerate(statements):
        result: dict[str, Any] = {"statement_id": index}
        try:
            if isinstance(stmt, ast.SelectStatement):
                def source_for(window, timezone):
                    return QuerySource(rt, load, window, timezone, budget)

                series = run_select(stmt, catalog, source_for, now, epoch)
            else:
                series = run_show(stmt, catalog, database)
        except InfluxQLError as exc:
            result["error"] = str(exc)
        except TsapiError as exc:
            result["error"] = exc.detail
        else:
            if series:
                result["series"] = series
        results.append(result)
    return {"results": results}
