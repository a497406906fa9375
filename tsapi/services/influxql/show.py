"""SHOW statements, answered from tsapi's metric catalog and series tags."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from tsapi.formats.influxql import ast
from tsapi.formats.influxql.predicates import matches as tags_match
from tsapi.formats.influxql.predicates import predicate_keys
from tsapi.formats.influxql.regex import compile_regex
from tsapi.formats.influxql.timerange import split_condition
from tsapi.formats.influxql.tokens import InfluxQLError
from tsapi.services.influxql.catalog import Catalog

MAX_SHOW_SERIES = 10_000


def run_show(stmt, catalog: Catalog, database: str | None) -> list[dict[str, Any]]:
    if getattr(stmt, "condition", None) is not None:
        stmt = replace(stmt, condition=_tag_condition(stmt))
    if isinstance(stmt, ast.ShowDatabases):
        return [{"name": "databases", "columns": ["name"],
                 "values": [[database or "tsapi"]]}]
    if isinstance(stmt, ast.ShowRetentionPolicies):
        return [{"columns": ["name", "duration", "shardGroupDuration", "replicaN",
                             "default"],
                 "values": [["autogen", "0s", "168h0m0s", 1, True]]}]
    if isinstance(stmt, ast.ShowMeasurements):
        return _measurements(stmt, catalog)
    names = _source_names(getattr(stmt, "sources", ()), catalog)
    if isinstance(stmt, ast.ShowFieldKeys):
        return _paged([{"name": name, "columns": ["fieldKey", "fieldType"],
                        "values": [[f, "float" if info.types[f] == "number" else "string"]
                                   for f in sorted(info.fields)]}
                       for name, info in _infos(names, catalog)], stmt)
    if isinstance(stmt, ast.ShowTagKeys):
        out = []
        for name, info in _infos(names, catalog):
            keys = sorted({k for sets in info.series.values() for tags in sets
                           if tags_match(stmt.condition, tags) for k in tags})
            out.append({"name": name, "columns": ["tagKey"], "values": [[k] for k in keys]})
        return _paged(out, stmt)
    if isinstance(stmt, ast.ShowTagValues):
        return _tag_values(stmt, names, catalog)
    if isinstance(stmt, ast.ShowSeries):
        return _series(stmt, names, catalog)
    raise InfluxQLError(f"unsupported statement: {type(stmt).__name__}")


def _source_names(sources, catalog: Catalog) -> list[str]:
    if not sources:
        return catalog.measurement_names()
    names = set()
    for source in sources:
        names.update(catalog.matching(source.regex) if source.regex else [source.name])
    return sorted(names)


def _infos(names, catalog: Catalog):
    for name in names:
        info = catalog.measurement(name)
        if info is not None:
            yield name, info


def _paged(series: list[dict], stmt) -> list[dict]:
    out = []
    for item in series:
        values = item["values"][stmt.offset:]
        if stmt.limit:
            values = values[:stmt.limit]
        if values:
            out.append({**item, "values": values})
    return out


def _tag_condition(stmt):
    """The tag tests of a SHOW's WHERE. Time bounds are dropped: tsapi does not narrow
    metadata by time (InfluxDB 1.x's SHOW TAG VALUES and SHOW SERIES may)."""
    bounds, predicate = split_condition(stmt.condition, 0)
    if isinstance(stmt, ast.ShowMeasurements) and (bounds.start is not None
                                                   or bounds.end is not None):
        raise InfluxQLError("SHOW MEASUREMENTS doesn't support time in WHERE clause")
    if predicate is not None:
        predicate_keys(predicate)
    return predicate


def _measurements(stmt: ast.ShowMeasurements, catalog: Catalog) -> list[dict]:
    names = catalog.measurement_names()
    if stmt.name_op in ("=~", "!~"):
        pattern = compile_regex(stmt.name_value)
        keep = stmt.name_op == "=~"
        names = [n for n in names if (pattern.search(n) is not None) == keep]
    elif stmt.name_op == "=":
        names = [n for n in names if n == stmt.name_value]
    elif stmt.name_op == "!=":
        names = [n for n in names if n != stmt.name_value]
    if stmt.condition is not None:
        predicate_keys(stmt.condition)
        names = [n for n in names if any(
            tags_match(stmt.condition, tags)
            for sets in catalog.measurement(n).series.values() for tags in sets)]
    return _paged([{"name": "measurements", "columns": ["name"],
                    "values": [[n] for n in names]}], stmt)


def _tag_values(stmt: ast.ShowTagValues, names, catalog: Catalog) -> list[dict]:
    if stmt.key_op in ("=~", "!~"):
        pattern = compile_regex(stmt.keys[0])
        keep = stmt.key_op == "=~"

        def key_wanted(key: str) -> bool:
            return (pattern.search(key) is not None) == keep
    elif stmt.key_op == "!=":
        def key_wanted(key: str) -> bool:
            return key != stmt.keys[0]
    else:
        def key_wanted(key: str) -> bool:
            return key in stmt.keys
    if stmt.condition is not None:
        predicate_keys(stmt.condition)
    out = []
    for name, info in _infos(names, catalog):
        pairs = set()
        for sets in info.series.values():
            for tags in sets:
                if stmt.condition is not None and not tags_match(stmt.condition, tags):
                    continue
                pairs.update((k, v) for k, v in tags.items() if key_wanted(k))
        if pairs:
            out.append({"name": name, "columns": ["key", "value"],
                        "values": [list(p) for p in sorted(pairs)]})
    return _paged(out, stmt)


def _series(stmt: ast.ShowSeries, names, catalog: Catalog) -> list[dict]:
    if stmt.condition is not None:
        predicate_keys(stmt.condition)
    keys = set()
    for name, info in _infos(names, catalog):
        for sets in info.series.values():
            for tags in sets:
                if stmt.condition is None or tags_match(stmt.condition, tags):
                    keys.add(",".join([name] + [f"{k}={tags[k]}" for k in sorted(tags)]))
                    if len(keys) > MAX_SHOW_SERIES:
                        raise InfluxQLError(f"more than {MAX_SHOW_SERIES} series: add "
                                            "FROM or WHERE")
    if not keys:
        return []
    return _paged([{"columns": ["key"], "values": [[k] for k in sorted(keys)]}], stmt)
