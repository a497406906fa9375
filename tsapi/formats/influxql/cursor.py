"""The token cursor InfluxQL's parser reads with: look, take, expect, and a depth bound."""

from __future__ import annotations

from tsapi.formats.influxql.tokens import ParseError, Token

MAX_DEPTH = 32


class TokenCursor:
    def __init__(self, tokens: list[Token]):
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    # -- token helpers ------------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def peek(self, ahead: int = 1) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.tokens[self.i]
        if token.kind != "EOF":
            self.i += 1
        return token

    def fail(self, expected: str):
        token = self.tok
        raise ParseError(f"found {token.text}, expected {expected}", token.pos)

    def keyword(self, *names: str) -> bool:
        if self.tok.is_keyword(*names):
            self.advance()
            return True
        return False

    def expect_keyword(self, name: str) -> None:
        if not self.keyword(name):
            self.fail(name)

    def op(self, *ops: str) -> bool:
        if self.tok.is_op(*ops):
            self.advance()
            return True
        return False

    def expect_op(self, op: str) -> None:
        if not self.op(op):
            self.fail(op)

    def ident(self, expected: str = "identifier") -> str:
        if self.tok.kind != "IDENT":
            self.fail(expected)
        return self.advance().value

    def integer(self, expected: str = "integer") -> int:
        if self.tok.kind != "INTEGER":
            self.fail(expected)
        return self.advance().value

    def nest(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ParseError(f"expression nested deeper than {MAX_DEPTH} levels", self.tok.pos)
