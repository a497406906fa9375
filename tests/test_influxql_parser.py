"""The InfluxQL scanner, parser and WHERE analysis (tsapi.formats.influxql), without I/O."""

from __future__ import annotations

import pytest

from tsapi.formats.influxql import ParseError, ast, parse_query
from tsapi.formats.influxql.cursor import MAX_DEPTH
from tsapi.formats.influxql.parser import MAX_STATEMENTS
from tsapi.formats.influxql.predicates import matches
from tsapi.formats.influxql.regex import compile_regex
from tsapi.formats.influxql.results import EMPTY, bucket_grid, fill_column, render_time
from tsapi.formats.influxql.timerange import parse_time_string, split_condition
from tsapi.formats.influxql.tokens import MAX_QUERY_CHARS, MAX_REGEX_CHARS, InfluxQLError
from tsapi.services.influxql.source import series_filter

NOW = 1_594_512_000_000_000_000
H = 3_600_000_000_000


def only(text: str):
    [statement] = parse_query(text)
    return statement


def test_grafana_default_panel_query_parses_into_its_parts():
    stmt = only('SELECT mean("value") FROM "cpu" WHERE ("host" = \'a\') AND time >= now() - '
                '6h and time <= now() GROUP BY time(10s), "host" fill(null)')
    assert stmt.fields == (ast.Field(ast.Call("mean", (ast.VarRef("value"),))),)
    assert stmt.sources == (ast.Measurement("cpu"),)
    assert stmt.group_interval == 10_000_000_000
    assert stmt.group_tags == ("host",)
    assert stmt.fill == ast.Fill("null")
    time_range, predicate = split_condition(stmt.condition, NOW)
    assert (time_range.start, time_range.end) == (NOW - 6 * H, NOW)
    assert predicate == ast.BinaryExpr("=", ast.VarRef("host"), ast.StringLiteral("a"))


def test_keywords_are_case_insensitive_and_quoted_names_are_not_keywords():
    stmt = only('select "select" as "from" from "where" where time > 0 group by "by"')
    assert stmt.fields[0] == ast.Field(ast.VarRef("select"), "from")
    assert stmt.sources[0].name == "where"
    assert stmt.group_tags == ("by",)


def test_sources_may_name_database_and_retention_policy_or_a_regex():
    stmt = only('SELECT * FROM "db"."autogen"."cpu", "autogen"."mem", /^disk/')
    assert stmt.sources == (ast.Measurement("cpu", None, "db", "autogen"),
                            ast.Measurement("mem", None, None, "autogen"),
                            ast.Measurement(None, "^disk"))


@pytest.mark.parametrize(("text", "mode", "value"), [
    ("fill(none)", "none", None), ("fill(previous)", "previous", None),
    ("fill(linear)", "linear", None), ("fill(0)", "value", 0), ("fill(-1.5)", "value", -1.5),
])
def test_fill_modes(text, mode, value):
    stmt = only(f"SELECT mean(v) FROM m WHERE time > 0 GROUP BY time(1m) {text}")
    assert stmt.fill == ast.Fill(mode, value)


def test_order_limits_offsets_and_tz():
    stmt = only("SELECT v FROM m ORDER BY time DESC LIMIT 5 OFFSET 2 SLIMIT 3 SOFFSET 1 "
                "tz('Europe/Berlin')")
    assert (stmt.descending, stmt.limit, stmt.offset, stmt.slimit, stmt.soffset,
            stmt.timezone) == (True, 5, 2, 3, 1, "Europe/Berlin")


def test_show_statements():
    assert only("SHOW DATABASES") == ast.ShowDatabases()
    assert only('SHOW RETENTION POLICIES ON "telegraf"') == ast.ShowRetentionPolicies(
        "telegraf")
    assert only("SHOW MEASUREMENTS WITH MEASUREMENT =~ /(?i)cp/ LIMIT 100") == \
        ast.ShowMeasurements("=~", "(?i)cp", None, 100)
    assert only('SHOW TAG VALUES FROM "cpu" WITH KEY = "host" WHERE "r" =~ /^us$/') == \
        ast.ShowTagValues("=", ("host",), (ast.Measurement("cpu"),),
                          ast.BinaryExpr("=~", ast.VarRef("r"), ast.RegexLiteral("^us$")))
    assert only('SHOW TAG VALUES WITH KEY IN ("a", "b")').keys == ("a", "b")
    assert only('SHOW FIELD KEYS FROM "cpu"') == ast.ShowFieldKeys((ast.Measurement("cpu"),))


def test_several_statements_separated_by_semicolons():
    assert len(parse_query("SHOW DATABASES; SHOW MEASUREMENTS;")) == 2


@pytest.mark.parametrize(("text", "message"), [
    ("SELEC * FROM cpu", "found SELEC, expected SELECT"),
    ("SELECT mean(v) FROM", "found EOF, expected identifier"),
    ("SELECT v FROM m WHERE host = 'a", "unterminated string"),
    ("SELECT v FROM m WHERE host =~ /a", "unterminated regex"),
    ("SELECT v FROM m WHERE $timeFilter", "unexpanded Grafana variable"),
    ("SELECT v FROM m GROUP BY time(1m) fill(sometimes)", "expected null, none"),
    ("SELECT v FROM m tz('Mars/Olympus')", "unable to find time zone"),
    ("SELECT v INTO x FROM m", "INTO is not supported"),
    ("SELECT v FROM m ORDER BY host", "only ORDER BY time"),
    ("", "empty query"),
])
def test_syntax_errors_name_what_was_found(text, message):
    with pytest.raises(ParseError, match=message):
        parse_query(text)


def test_limits_bound_length_statements_and_nesting():
    with pytest.raises(ParseError, match="longer than"):
        parse_query("SELECT v FROM m WHERE " + "a = 'b' AND " * (MAX_QUERY_CHARS // 10))
    with pytest.raises(ParseError, match="statements"):
        parse_query("SHOW DATABASES;" * (MAX_STATEMENTS + 1))
    with pytest.raises(ParseError, match="nested deeper"):
        parse_query("SELECT v FROM m WHERE " + "(" * (MAX_DEPTH + 1) + "a = 'b'"
                    + ")" * (MAX_DEPTH + 1))
    with pytest.raises(ParseError, match="regular expression is longer"):
        parse_query("SELECT v FROM m WHERE a =~ /" + "x" * (MAX_REGEX_CHARS + 1) + "/")


@pytest.mark.parametrize("text", [
    "time >= 1594512000000ms", "time >= 1594512000s", "time >= 1594512000000000000",
    "time >= '2020-07-12T00:00:00Z'", "time >= '2020-07-12 00:00:00'",
    "time >= '2020-07-12T02:00:00+02:00'", "time >= '2020-07-11T23:00:00Z' + 1h",
    "1594512000000ms <= time",
])
def test_every_spelling_of_a_time_bound(text):
    stmt = only(f"SELECT v FROM m WHERE {text}")
    assert split_condition(stmt.condition, NOW)[0].start == NOW


def test_strict_bounds_move_by_one_nanosecond_and_bounds_intersect():
    stmt = only("SELECT v FROM m WHERE time > 10 AND time < 100 AND time >= 20")
    time_range, _ = split_condition(stmt.condition, NOW)
    assert (time_range.start, time_range.end) == (20, 99)


@pytest.mark.parametrize("text", ["time > 0 OR host = 'a'", "time != 5", "time > 1.5",
                                  "time > host", "time > '12 July'"])
def test_time_conditions_outside_the_supported_forms_are_refused(text):
    stmt = only(f"SELECT v FROM m WHERE {text}")
    with pytest.raises(InfluxQLError):
        split_condition(stmt.condition, NOW)


def test_time_strings_keep_nanoseconds():
    assert parse_time_string("1970-01-01T00:00:01.000000123Z") == 1_000_000_123


def test_tag_predicates_read_missing_tags_as_empty():
    stmt = only("SELECT v FROM m WHERE (host = 'a' OR host =~ /^b/) AND region != 'eu'")
    _, predicate = split_condition(stmt.condition, NOW)
    assert matches(predicate, {"host": "a"})
    assert matches(predicate, {"host": "bx", "region": "us"})
    assert not matches(predicate, {"host": "b", "region": "eu"})
    assert not matches(predicate, {"region": "us"})


def test_series_filter_names_exactly_the_passing_series():
    series = [{"host": "a", "region": "us"}, {"host": "b", "region": "us"},
              {"host": "c", "region": "eu"}, {"host": "d"}]

    def where(text):
        return split_condition(only(f"SELECT v FROM m WHERE {text}").condition, NOW)[1]

    assert series_filter(where("host = 'a' OR host = 'c'"), series) == {"host": ("a", "c")}
    assert series_filter(where("host = 'zz'"), series) is None
    assert series_filter(where("host != 'zz'"), series) == {}
    wanted = series_filter(where("region = 'us' OR host = 'c'"), series)
    assert len(wanted) == 1  # one key suffices: host in (a, b, c) or region in (eu, us)
    assert [s["host"] for s in series
            if all(s.get(k, "") in v for k, v in wanted.items())] == ["a", "b", "c"]
    grid = [{"x": "1", "y": "1"}, {"x": "1", "y": "2"}, {"x": "2", "y": "1"},
            {"x": "2", "y": "2"}]
    with pytest.raises(InfluxQLError, match="cannot name"):
        series_filter(where("(x = '1' AND y = '1') OR (x = '2' AND y = '2')"), grid)


@pytest.mark.parametrize("pattern", ["(a+)+", "(a|aa)*", "(x*)*y", r"(a)\1", "(?=a)",
                                     "(?<!a)b", "a{2}{3}(b+){2}", "[", r"\p{L}"])
def test_regexes_that_could_backtrack_or_python_reads_otherwise_are_refused(pattern):
    with pytest.raises(InfluxQLError):
        compile_regex(pattern)


@pytest.mark.parametrize("pattern", ["^(a|b|c)$", "(?i)cpu", "^server[0-9]+$", r"\.local$",
                                     "^$", "a.*b.*c", "(?:ab)+"])
def test_the_regexes_grafana_and_people_write_are_accepted(pattern):
    assert compile_regex(pattern)


def test_times_render_as_rfc3339_with_trailing_zeros_trimmed_or_as_epoch_units():
    from zoneinfo import ZoneInfo
    assert render_time(NOW, None, None) == "2020-07-12T00:00:00Z"
    assert render_time(NOW + 500_000_000, None, None) == "2020-07-12T00:00:00.5Z"
    assert render_time(NOW, None, ZoneInfo("Europe/Berlin")) == "2020-07-12T02:00:00+02:00"
    assert render_time(NOW, "ms", None) == NOW // 1_000_000
    assert render_time(NOW, "h", None) == NOW // H


def test_bucket_grids_follow_local_midnight_with_tz():
    from zoneinfo import ZoneInfo
    day = 24 * H
    # Europe/Berlin leaves summer time on 2020-10-25: that day has 25 hours.
    start = parse_time_string("2020-10-24T12:00:00Z")
    end = parse_time_string("2020-10-26T12:00:00Z")
    grid = bucket_grid(start, end, day, 0, ZoneInfo("Europe/Berlin"))
    assert [render_time(t, None, ZoneInfo("Europe/Berlin")) for t in grid] == [
        "2020-10-24T00:00:00+02:00", "2020-10-25T00:00:00+02:00", "2020-10-26T00:00:00+01:00"]


def test_fill_previous_and_linear_stay_within_the_series():
    times = [0, 10, 20, 30, 40]
    values = [EMPTY, 1.0, EMPTY, 3.0, EMPTY]
    assert fill_column(times, values, ast.Fill("previous")) == [None, 1.0, 1.0, 3.0, 3.0]
    assert fill_column(times, values, ast.Fill("linear")) == [None, 1.0, 2.0, 3.0, None]
    assert fill_column(times, values, ast.Fill("value", 0)) == [0, 1.0, 0, 3.0, 0]


def test_repeated_column_names_get_influxdb_suffixes_around_aliases():
    from tsapi.formats.influxql.results import column_names
    assert column_names(["max", "max", "max_1"], [False, False, True]) == [
        "max", "max_2", "max_1"]
    assert column_names(["max", "max", "max"], [False] * 3) == ["max", "max_1", "max_2"]
    assert column_names(["u", "u"], [False, False]) == ["u", "u_1"]
