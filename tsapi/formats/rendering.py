"""Query result formats: JSON (default), CSV and NDJSON, whole or streamed."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import orjson

MIMETYPES = {"json": "application/json", "csv": "text/csv", "ndjson": "application/x-ndjson"}
# JSON first: best_match breaks ties by this order, so "*/*" (curl's default) means JSON.
FORMAT_FOR_ACCEPT = {"application/json": "json", "text/csv": "csv",
                     "application/x-ndjson": "ndjson", "application/ndjson": "ndjson"}
STREAM_CHUNK_ROWS = 5000
# Every raw row the database renders as JSON (store.queries.raw_json) starts so; inside a
# JSON string the quote is escaped, so this cannot occur within a value.
JSON_ROW_START = ',{"time":'
# CSV safe mode (TSAPI_CSV_SAFE=on, set per request by the HTTP layer): a text cell that a
# spreadsheet would run as a formula (=HYPERLINK(...), +cmd|..., -1+1, @SUM(...), or one
# starting with a tab or carriage return) is written with a leading apostrophe, which
# spreadsheets show as text. Numbers are never changed. Off by default: it alters text that
# starts so (a tag value "-5" reads back as "'-5"), so exports no longer round-trip.
CSV_SAFE: ContextVar[bool] = ContextVar("csv_safe", default=False)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class Rendered:
    body: bytes
    mimetype: str
    headers: dict[str, str] = field(default_factory=dict)


def raw_row(r, group_by: tuple[str, ...], metric: str | None) -> dict[str, Any]:
    """A raw row (time, value, series id, *group values) as a result row."""
    row: dict[str, Any] = {"time": r[0], "value": r[1]}
    if group_by:
        row["tags"] = dict(zip(group_by, r[3:], strict=True))
    if metric is not None:
        row["metric"] = metric
    return row


def bucket_row(r, group_by: tuple[str, ...], metric: str | None) -> dict[str, Any]:
    """A bucket row (start, *group values, value) as a result row."""
    row: dict[str, Any] = {"time": r[0], "value": _number(r[-1])}
    if group_by:
        row["tags"] = dict(zip(group_by, r[1:-1], strict=True))
    if metric is not None:
        row["metric"] = metric
    return row


def _number(value):
    """percentile_cont and friends give Decimal or float; JSON wants plain numbers."""
    if value is None or isinstance(value, int | float | str):
        return value
    return float(value)


def _columns(group_by: tuple[str, ...], multi: bool) -> list[str]:
    return (["metric"] if multi else []) + list(group_by) + ["time", "value"]


def _iso(value) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else value


def defused(cell: Any) -> Any:
    """A text cell a spreadsheet would read as a formula, made plain text; others as they are."""
    if cell.__class__ is str and cell.startswith(_FORMULA_STARTS):
        return "'" + cell
    return cell


def _csv_lines(records: Iterable[list], header: list[str] | None) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(header)
    if CSV_SAFE.get():
        records = ([defused(cell) for cell in record] for record in records)
    writer.writerows(records)
    return out.getvalue().encode()


def render_rows(rows: list[dict[str, Any]], fmt: str, group_by: tuple[str, ...],
                multi: bool) -> Rendered:
    """Rows as {"time", "value", "tags"?, "metric"?}; CSV flattens tags into columns."""
    if fmt == "json":
        body = orjson.dumps(rows)
    elif fmt == "ndjson":
        body = b"".join(orjson.dumps(r) + b"\n" for r in rows)
    else:
        records = []
        for r in rows:
            tags = r.get("tags") or {}
            records.append(([r["metric"]] if multi else []) + [tags.get(k) for k in group_by]
                           + [_iso(r["time"]), r["value"]])
        body = _csv_lines(records, _columns(group_by, multi))
    return Rendered(body, MIMETYPES[fmt])


def without_last_json_row(rows: str) -> str:
    """Rows rendered by the database as JSON objects joined by commas, less the last one."""
    return rows[:rows.rfind(JSON_ROW_START)]


def json_array(parts: list[str]) -> Rendered:
    """Runs of JSON objects joined by commas (some maybe empty) as one JSON array."""
    body = ("[" + ",".join(p for p in parts if p) + "]").encode()
    return Rendered(body, MIMETYPES["json"])


def stream_rows(rows: Iterable, fmt: str, group_by: tuple[str, ...], metric: str | None,
                header: bool) -> Iterator[bytes]:
    """Raw rows (time, value, series id, *group values) as CSV or NDJSON chunks."""
    if fmt == "csv" and header:
        yield _csv_lines([], _columns(group_by, metric is not None))
    chunk: list = []
    for r in rows:
        chunk.append(r)
        if len(chunk) >= STREAM_CHUNK_ROWS:
            yield _encode_chunk(chunk, fmt, group_by, metric)
            chunk = []
    if chunk:
        yield _encode_chunk(chunk, fmt, group_by, metric)


def _encode_chunk(chunk: list, fmt: str, group_by: tuple[str, ...], metric: str | None):
    if fmt == "ndjson":
        parts = [orjson.dumps(raw_row(r, group_by, metric)) for r in chunk]
        return b"\n".join(parts) + b"\n"
    prefix = [metric] if metric is not None else []
    return _csv_lines(
        (prefix + list(r[3:]) + [r[0].isoformat(), r[1]] for r in chunk), None)
