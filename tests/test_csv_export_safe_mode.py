"""CSV exports in safe mode (TSAPI_CSV_SAFE=on) cannot carry spreadsheet formulas.

A text cell starting with = + - @ (or a tab or carriage return) is written with a leading
apostrophe; numbers, times and other text are untouched. Off by default: exports are verbatim
(and can be loaded back with POST /ingest).
"""

import csv
import io

from helpers import ingest, point

T0 = "2024-01-01T00:00:00Z"
RANGE = {"start_time": T0, "end_time": "2024-01-02T00:00:00Z"}
ATTACKS = ['=HYPERLINK("http://evil.example","x")', "+cmd|' /C calc'!A0", "-2+3",
           "@SUM(A1:A2)", "\t=1+1", "plain text"]


def _export(client, body) -> list[list[str]]:
    response = client.post("/query", json={**body, "format": "csv"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def _load(client):
    # Tag values cannot hold a tab: theirs is the text without it.
    ingest(client, [point(f"2024-01-01T00:0{i}:00Z", "notes", text, site=text.strip())
                    for i, text in enumerate(ATTACKS)])
    ingest(client, [point(T0, "temperature", -5.5, site="=A1")])


def test_safe_mode_defuses_formula_cells_in_raw_and_grouped_exports(make_app):
    client = make_app(TSAPI_CSV_SAFE="on").test_client()
    _load(client)
    rows = _export(client, {"metric": "notes", "group_by": ["site"], **RANGE})
    values = {row[-1] for row in rows[1:]}
    sites = {row[0] for row in rows[1:]}
    assert values == {"'" + t if t[0] in "=+-@\t" else t for t in ATTACKS}
    assert sites == {"'" + t.strip() if t.strip()[0] in "=+-@" else t for t in ATTACKS}
    numbers = _export(client, {"metric": "temperature", "group_by": ["site"], **RANGE})
    assert numbers[1][0] == "'=A1"
    assert float(numbers[1][-1]) == -5.5  # a negative number is a number, not a formula
    aggregated = _export(client, {"metric": "temperature", "group_by": ["site"],
                                  "aggregation": "min", "interval": "1h", **RANGE})
    assert aggregated[1][0] == "'=A1" and float(aggregated[1][-1]) == -5.5


def test_exports_are_verbatim_by_default(make_app):
    client = make_app().test_client()
    _load(client)
    rows = _export(client, {"metric": "notes", "group_by": ["site"], **RANGE})
    assert {row[-1] for row in rows[1:]} == set(ATTACKS)
