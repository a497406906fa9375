"""A recursive-descent parser for the InfluxQL subset tsapi answers (see the README's Grafana
section): SELECT with aggregates, WHERE, GROUP BY, fill, ORDER BY, LIMIT, tz(); and SHOW.

Each limit (statement count, nesting depth, list lengths) bounds the work one query can ask
of the parser, so no input can make it recurse deeply or run long.
"""

from __future__ import annotations

from tsapi.formats.influxql import ast
from tsapi.formats.influxql.expressions import ExpressionParser
from tsapi.formats.influxql.tokens import MAX_INT64, ParseError, integer_value, tokenize
from tsapi.formats.timezones import timezone_problem

MAX_STATEMENTS = 16
MAX_LIST = 64

STATEMENT_STARTS = "SELECT, DELETE, SHOW, CREATE, DROP, EXPLAIN, GRANT, REVOKE, ALTER, SET, KILL"


def parse_query(text: str) -> list[ast.Statement]:
    """The statements of `text` (separated by `;`); ParseError naming the first problem."""
    return _Parser(tokenize(text)).query()


class _Parser(ExpressionParser):
    # -- statements ---------------------------------------------------------------------------
    def query(self) -> list[ast.Statement]:
        statements = []
        while True:
            while self.op(";"):
                pass
            if self.tok.kind == "EOF":
                break
            if len(statements) >= MAX_STATEMENTS:
                raise ParseError(f"more than {MAX_STATEMENTS} statements in one query")
            statements.append(self.statement())
            if self.tok.kind != "EOF" and not self.tok.is_op(";"):
                self.fail(";")
        if not statements:
            raise ParseError("empty query")
        return statements

    def statement(self) -> ast.Statement:
        if self.keyword("SELECT"):
            return self.select()
        if self.keyword("SHOW"):
            return self.show()
        self.fail(STATEMENT_STARTS)

    def show(self) -> ast.Statement:
        if self.keyword("DATABASES"):
            return ast.ShowDatabases()
        if self.keyword("RETENTION"):
            self.expect_keyword("POLICIES")
            database = self.ident() if self.keyword("ON") else None
            return ast.ShowRetentionPolicies(database)
        if self.keyword("MEASUREMENTS"):
            self.on_database()
            name_op = name_value = None
            if self.keyword("WITH"):
                self.expect_keyword("MEASUREMENT")
                name_op, name_value = self.name_match()
            condition = self.where()
            limit, offset = self.limit_offset()
            return ast.ShowMeasurements(name_op, name_value, condition, limit, offset)
        if self.keyword("FIELD"):
            self.expect_keyword("KEYS")
            self.on_database()
            sources = self.from_clause(optional=True)
            limit, offset = self.limit_offset()
            return ast.ShowFieldKeys(sources, limit, offset)
        if self.keyword("TAG"):
            if self.keyword("KEYS"):
                self.on_database()
                sources = self.from_clause(optional=True)
                condition = self.where()
                limit, offset = self.limit_offset()
                return ast.ShowTagKeys(sources, condition, limit, offset)
            self.expect_keyword("VALUES")
            self.on_database()
            sources = self.from_clause(optional=True)
            self.expect_keyword("WITH")
            self.expect_keyword("KEY")
            key_op, keys = self.tag_key_match()
            condition = self.where()
            limit, offset = self.limit_offset()
            return ast.ShowTagValues(key_op, keys, sources, condition, limit, offset)
        if self.keyword("SERIES"):
            self.on_database()
            sources = self.from_clause(optional=True)
            condition = self.where()
            limit, offset = self.limit_offset()
            return ast.ShowSeries(sources, condition, limit, offset)
        self.fail("DATABASES, MEASUREMENTS, FIELD KEYS, TAG KEYS, TAG VALUES, "
                  "RETENTION POLICIES, SERIES")

    def on_database(self) -> None:
        if self.keyword("ON"):
            self.ident()

    def name_match(self) -> tuple[str, str]:
        if not self.tok.is_op("=", "!=", "<>", "=~", "!~"):
            self.fail("=, !=, =~, !~")
        op = self.advance().value
        op = "!=" if op == "<>" else op
        if op in ("=~", "!~"):
            if self.tok.kind != "REGEX":
                self.fail("regex")
            return op, self.advance().value
        return op, self.ident()

    def tag_key_match(self) -> tuple[str, tuple[str, ...]]:
        if self.tok.kind == "IDENT" and self.tok.value.upper() == "IN":
            self.advance()
            self.expect_op("(")
            keys = [self.ident()]
            while self.op(","):
                keys.append(self.ident())
                if len(keys) > MAX_LIST:
                    self.fail(")")
            self.expect_op(")")
            return "IN", tuple(keys)
        op, value = self.name_match()
        return op, (value,)

    def limit_offset(self) -> tuple[int, int]:
        limit = self.integer() if self.keyword("LIMIT") else 0
        offset = self.integer() if self.keyword("OFFSET") else 0
        return limit, offset

    def where(self):
        return self.expr() if self.keyword("WHERE") else None

    # -- SELECT -------------------------------------------------------------------------------
    def select(self) -> ast.SelectStatement:
        fields = [self.field()]
        while self.op(","):
            fields.append(self.field())
            if len(fields) > MAX_LIST:
                raise ParseError(f"more than {MAX_LIST} fields", self.tok.pos)
        if self.keyword("INTO"):
            raise ParseError("SELECT ... INTO is not supported", self.tok.pos)
        sources = self.from_clause(optional=False)
        condition = self.where()
        parts = {"group_interval": None, "group_offset": 0, "group_tags": (),
                 "group_all_tags": False}
        if self.keyword("GROUP"):
            self.expect_keyword("BY")
            self.dimensions(parts)
        fill = self.fill() if self.tok.is_keyword("FILL") else ast.Fill()
        descending = False
        if self.keyword("ORDER"):
            self.expect_keyword("BY")
            if self.tok.kind != "IDENT" or self.tok.value.lower() != "time":
                raise ParseError("only ORDER BY time supported at this time", self.tok.pos)
            self.advance()
            if self.keyword("DESC"):
                descending = True
            else:
                self.keyword("ASC")
        limit = self.integer() if self.keyword("LIMIT") else 0
        offset = self.integer() if self.keyword("OFFSET") else 0
        slimit = self.integer() if self.keyword("SLIMIT") else 0
        soffset = self.integer() if self.keyword("SOFFSET") else 0
        timezone = None
        if self.tok.kind == "IDENT" and self.tok.value.lower() == "tz":
            self.advance()
            self.expect_op("(")
            if self.tok.kind != "STRING":
                self.fail("string")
            token = self.advance()
            timezone = token.value
            if timezone_problem(timezone):
                raise ParseError(f"unable to find time zone {timezone[:64]}", token.pos)
            self.expect_op(")")
        return ast.SelectStatement(tuple(fields), sources, condition, fill=fill,
                                   descending=descending, limit=limit, offset=offset,
                                   slimit=slimit, soffset=soffset, timezone=timezone, **parts)

    def field(self) -> ast.Field:
        expr = self.expr()
        alias = self.ident() if self.keyword("AS") else None
        return ast.Field(expr, alias)

    def from_clause(self, optional: bool) -> tuple[ast.Measurement, ...]:
        if not self.keyword("FROM"):
            if optional:
                return ()
            self.fail("FROM")
        sources = [self.measurement()]
        while self.op(","):
            sources.append(self.measurement())
            if len(sources) > MAX_LIST:
                self.fail("WHERE")
        return tuple(sources)

    def measurement(self) -> ast.Measurement:
        if self.tok.kind == "REGEX":
            return ast.Measurement(regex=self.advance().value)
        parts = [self.ident()]
        while self.tok.is_op("."):
            self.advance()
            if self.tok.kind == "REGEX" and len(parts) < 3:
                regex = self.advance().value
                return ast.Measurement(regex=regex, **self._qualifiers(parts + [""]))
            if self.tok.is_op("."):  # db..measurement: the default retention policy
                parts.append("")
                continue
            parts.append(self.ident())
            if len(parts) > 3:
                self.fail("FROM source")
        return ast.Measurement(name=parts[-1], **self._qualifiers(parts))

    @staticmethod
    def _qualifiers(parts: list[str]) -> dict:
        if len(parts) == 3:
            return {"database": parts[0] or None, "retention_policy": parts[1] or None}
        if len(parts) == 2:
            return {"retention_policy": parts[0] or None}
        return {}

    def dimensions(self, parts: dict) -> None:
        tags: list[str] = []
        while True:
            token = self.tok
            if token.is_op("*"):
                self.advance()
                parts["group_all_tags"] = True
            elif (token.kind == "IDENT" and token.value.lower() == "time"
                  and token.text.lower() == "time" and self.peek().is_op("(")):
                self.advance()
                self.advance()
                if parts["group_interval"] is not None:
                    raise ParseError("multiple time dimensions", token.pos)
                parts["group_interval"] = self.duration()
                if self.op(","):
                    parts["group_offset"] = self.offset_duration()
                self.expect_op(")")
            elif token.kind == "IDENT":
                tags.append(self.advance().value)
                # "host"::tag, as Grafana writes it
                if self.op("::") and not self.keyword("TAG", "FIELD"):
                    self.ident("tag")
            elif token.kind == "REGEX":
                raise ParseError("GROUP BY a regex is not supported", token.pos)
            else:
                self.fail("identifier, time(), *")
            if len(tags) > MAX_LIST:
                raise ParseError(f"more than {MAX_LIST} dimensions", token.pos)
            if not self.op(","):
                break
        parts["group_tags"] = tuple(tags)

    def offset_duration(self) -> int:
        negative = self.op("-")
        if self.tok.kind == "IDENT" and self.tok.value.lower() == "now" and not negative:
            raise ParseError("GROUP BY time offset now() is not supported", self.tok.pos)
        value = self.duration()
        return -value if negative else value

    def fill(self) -> ast.Fill:
        self.advance()
        self.expect_op("(")
        token = self.tok
        if token.kind == "INTEGER":
            # An unsigned literal (past int64) is no fill value to InfluxDB.
            if integer_value(self.advance()) > MAX_INT64:
                raise ParseError("expected number argument in fill()")
            fill = ast.Fill("value", token.value)
        elif token.is_op("-") and self.peek().kind == "INTEGER":
            self.advance()
            fill = ast.Fill("value", integer_value(self.advance(), negative=True))
        elif token.kind == "NUMBER":
            self.advance()
            fill = ast.Fill("value", token.value)
        elif token.is_op("-") and self.peek().kind == "NUMBER":
            self.advance()
            fill = ast.Fill("value", -self.advance().value)
        elif token.kind == "IDENT" and token.value.lower() in ("null", "none", "previous",
                                                                "linear"):
            self.advance()
            fill = ast.Fill(token.value.lower())
        else:
            self.fail("null, none, previous, linear or a number")
        self.expect_op(")")
        return fill
