"""InfluxQL expressions: precedence climbing over OR, AND, comparisons, + -, * /."""

from __future__ import annotations

from tsapi.formats.influxql import ast
from tsapi.formats.influxql.cursor import TokenCursor
from tsapi.formats.influxql.tokens import ParseError, integer_value

COMPARISONS = ("=", "!=", "<>", "<", "<=", ">", ">=", "=~", "!~")


class ExpressionParser(TokenCursor):
    def duration(self) -> int:
        if self.tok.kind != "DURATION":
            self.fail("duration")
        return self.advance().value

    def expr(self):
        return self.binary(0)

    _LEVELS = (("OR",), ("AND",), COMPARISONS, ("+", "-"), ("*", "/"))

    def binary(self, level: int):
        if level == len(self._LEVELS):
            return self.unary()
        self.nest()
        lhs = self.binary(level + 1)
        ops = self._LEVELS[level]
        while True:
            token = self.tok
            if level < 2 and token.is_keyword(*ops):
                op = token.value
            elif level >= 2 and token.is_op(*ops):
                op = "!=" if token.value == "<>" else token.value
            else:
                break
            self.advance()
            rhs = self.binary(level + 1)
            lhs = ast.BinaryExpr(op, lhs, rhs)
        self.depth -= 1
        return lhs

    def unary(self):
        token = self.tok
        if token.is_op("-") and self.peek().kind == "INTEGER":
            self.advance()
            return ast.NumberLiteral(integer_value(self.advance(), negative=True))
        if token.is_op("-") and self.peek().kind in ("NUMBER", "DURATION"):
            self.advance()
            value = self.primary()
            if isinstance(value, ast.DurationLiteral):
                return ast.DurationLiteral(-value.nanoseconds)
            return ast.NumberLiteral(-value.value)
        return self.primary()

    def primary(self):
        token = self.tok
        if token.is_op("("):
            self.advance()
            self.nest()
            inner = self.expr()
            self.depth -= 1
            self.expect_op(")")
            return inner
        if token.is_op("*"):
            self.advance()
            return ast.Wildcard()
        if token.kind == "IDENT":
            self.advance()
            if self.tok.is_op("(") and token.text[0] != '"':
                return self.call(token.value.lower())
            kind = None
            if self.op("::"):
                if self.tok.kind == "KEYWORD" and self.tok.value in ("TAG", "FIELD"):
                    kind = self.advance().value.lower()
                else:
                    kind = self.ident("tag, field").lower()
            return ast.VarRef(token.value, kind)
        if token.kind == "INTEGER":
            return ast.NumberLiteral(integer_value(self.advance()))
        if token.kind == "NUMBER":
            self.advance()
            return ast.NumberLiteral(token.value)
        if token.kind == "STRING":
            self.advance()
            return ast.StringLiteral(token.value)
        if token.kind == "DURATION":
            self.advance()
            return ast.DurationLiteral(token.value)
        if token.kind == "REGEX":
            self.advance()
            return ast.RegexLiteral(token.value)
        if token.kind == "VAR":
            raise ParseError(f"found {token.text}, an unexpanded Grafana variable", token.pos)
        self.fail("identifier, string, number, bool")

    def call(self, name: str) -> ast.Call:
        self.expect_op("(")
        self.nest()
        args = []
        if not self.tok.is_op(")"):
            args.append(self.expr())
            while self.op(","):
                args.append(self.expr())
                if len(args) > 8:
                    self.fail(")")
        self.depth -= 1
        self.expect_op(")")
        return ast.Call(name, tuple(args))
