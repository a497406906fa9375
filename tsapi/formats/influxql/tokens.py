"""InfluxQL tokens: a scanner that turns statement text into typed tokens, with size limits.

A slash starts a regular expression only where InfluxQL expects one (after `=~`, `!~` and
`FROM`), as InfluxDB's own scanner decides; elsewhere it is the division operator.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_QUERY_CHARS = 16_384
MAX_TOKENS = 4_096
MAX_REGEX_CHARS = 256
# InfluxDB keeps durations in a signed 64-bit count of nanoseconds (about 292 years) and
# refuses longer ones as it parses; so does tsapi, with InfluxDB's words.
MAX_DURATION_NS = 2**63 - 1
# InfluxDB reads an integer literal as int64, or failing that as uint64 (its "unsigned
# literal"); past both it refuses the statement.
MAX_INT64 = 2**63 - 1
MAX_UINT64 = 2**64 - 1

# Duration units and their length in nanoseconds; longer spellings are tried first.
DURATION_UNITS = (("ns", 1), ("ms", 1_000_000), ("us", 1_000), ("u", 1_000), ("µ", 1_000),
                  ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000),
                  ("d", 86_400_000_000_000), ("w", 604_800_000_000_000))
KEYWORDS = frozenset({
    "ALL", "ALTER", "AND", "AS", "ASC", "BY", "CREATE", "DATABASE", "DATABASES", "DELETE",
    "DESC", "DROP", "FIELD", "FILL", "FROM", "GRANT", "GROUP", "INTO", "KEY", "KEYS", "LIMIT",
    "MEASUREMENT", "MEASUREMENTS", "OFFSET", "ON", "OR", "ORDER", "POLICIES", "POLICY",
    "RETENTION", "REVOKE", "SELECT", "SERIES", "SHOW", "SLIMIT", "SOFFSET", "TAG", "VALUES",
    "WHERE", "WITH",
})
OPERATORS = ("=~", "!~", "!=", "<>", "<=", ">=", "::", "=", "<", ">", "+", "-", "*", "/",
             ",", "(", ")", ";", ".")
REGEX_AFTER = frozenset({"=~", "!~", "FROM"})


class InfluxQLError(ValueError):
    """The statement cannot be read or run; the message is InfluxDB's style of saying why."""


class ParseError(InfluxQLError):
    """The text is not an InfluxQL statement this service reads."""

    def __init__(self, message: str, position: int | None = None):
        where = "" if position is None else f" at line 1, char {position + 1}"
        super().__init__(f"{message}{where}")


@dataclass(frozen=True)
class Token:
    kind: str  # KEYWORD IDENT STRING INTEGER NUMBER DURATION REGEX OP VAR EOF
    value: object
    pos: int
    text: str  # as written, for error messages

    def is_keyword(self, *names: str) -> bool:
        return self.kind == "KEYWORD" and self.value in names

    def is_op(self, *ops: str) -> bool:
        return self.kind == "OP" and self.value in ops


def tokenize(text: str) -> list[Token]:
    """All tokens of `text`, ending with one EOF token; ParseError on anything unreadable."""
    if len(text) > MAX_QUERY_CHARS:
        raise ParseError(f"query is longer than {MAX_QUERY_CHARS} characters")
    tokens: list[Token] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t\r\n":
            i += 1
        if text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if len(tokens) >= MAX_TOKENS:
            raise ParseError(f"query has more than {MAX_TOKENS} tokens")
        if i >= n:
            tokens.append(Token("EOF", None, i, "EOF"))
            return tokens
        c = text[i]
        prev = tokens[-1] if tokens else None
        if c == "/" and prev is not None and (
                prev.is_op("=~", "!~") or prev.is_keyword("FROM")
                or (prev.is_op(",") and _in_from(tokens))):
            token, i = _regex(text, i)
        elif c.isalpha() or c == "_":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            word = text[i:j]
            kind = "KEYWORD" if word.upper() in KEYWORDS else "IDENT"
            token = Token(kind, word.upper() if kind == "KEYWORD" else word, i, word)
            i = j
        elif c == '"':
            value, j = _quoted(text, i, '"')
            token, i = Token("IDENT", value, i, text[i:j]), j
        elif c == "'":
            value, j = _quoted(text, i, "'")
            token, i = Token("STRING", value, i, text[i:j]), j
        elif _digit(c) or (c == "." and i + 1 < n and _digit(text[i + 1])):
            token, i = _number(text, i)
        elif c == "$":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            token, i = Token("VAR", text[i:j], i, text[i:j]), j
        else:
            op = next((o for o in OPERATORS if text.startswith(o, i)), None)
            if op is None:
                raise ParseError(f"found {c!r}, unexpected character", i)
            token, i = Token("OP", op, i, op), i + len(op)
        tokens.append(token)


def _digit(c: str) -> bool:
    # ASCII only: str.isdigit() also holds for "²", which int() cannot read.
    return "0" <= c <= "9"


def _in_from(tokens: list[Token]) -> bool:
    """Whether the tokens so far end inside a FROM list (so `, /re/` is a regex source)."""
    for token in reversed(tokens):
        if token.is_keyword("FROM"):
            return True
        if token.kind == "KEYWORD":
            return False
    return False


def _quoted(text: str, start: int, quote: str) -> tuple[str, int]:
    out, i, n = [], start + 1, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            nxt = text[i + 1]
            out.append({"n": "\n", "t": "\t"}.get(nxt, nxt) if nxt in (quote, "\\", "n", "t")
                       else "\\" + nxt)
            i += 2
            continue
        if c == quote:
            return "".join(out), i + 1
        if c == "\n":
            break
        out.append(c)
        i += 1
    kind = "string" if quote == "'" else "quoted identifier"
    raise ParseError(f"found unterminated {kind}", start)


def _regex(text: str, start: int) -> tuple[Token, int]:
    out, i, n = [], start + 1, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            # `\/` is a slash in the pattern; every other escape belongs to the pattern.
            out.append("/" if text[i + 1] == "/" else text[i:i + 2])
            i += 2
            continue
        if c == "/":
            pattern = "".join(out)
            if len(pattern) > MAX_REGEX_CHARS:
                raise ParseError(f"regular expression is longer than {MAX_REGEX_CHARS} "
                                 "characters", start)
            return Token("REGEX", pattern, start, text[start:i + 1]), i + 1
        out.append(c)
        i += 1
    raise ParseError("found unterminated regex", start)


def _number(text: str, start: int) -> tuple[Token, int]:
    i, n = start, len(text)
    while i < n and _digit(text[i]):
        i += 1
    is_float = False
    if i < n and text[i] == "." and i + 1 < n and _digit(text[i + 1]):
        is_float = True
        i += 1
        while i < n and _digit(text[i]):
            i += 1
    if i < n and text[i] in "eE" and is_float:
        j = i + 1
        if j < n and text[j] in "+-":
            j += 1
        if j < n and _digit(text[j]):
            i = j
            while i < n and _digit(text[i]):
                i += 1
    digits = text[start:i]
    if len(digits) > 40:
        raise ParseError(f"found {digits[:20]}..., number is too long", start)
    if not is_float:
        for unit, size in DURATION_UNITS:
            if text.startswith(unit, i):
                end = i + len(unit)
                if end < n and (text[end].isalnum() or text[end] == "_"):
                    continue  # "5min": not a duration unit
                return _duration(int(digits), size, text[start:end], start), end
        return Token("INTEGER", int(digits), start, digits), i
    value = float(digits)
    if value in (float("inf"), float("-inf")):  # an exponent past a double's range
        raise ParseError("unable to parse number", start)
    return Token("NUMBER", value, start, digits), i


def integer_value(token: Token, negative: bool = False) -> int:
    """An INTEGER token's value as InfluxDB reads it in an expression (minus sign applied):
    past uint64 it cannot be read at all, and negated it must fit int64."""
    if token.value > MAX_UINT64:
        raise ParseError("unable to parse integer", token.pos)
    if negative:
        if token.value > MAX_INT64 + 1:
            # As InfluxDB's, this message names no position.
            raise ParseError(f"constant -{token.text} underflows int64")
        return -token.value
    return token.value


def _duration(count: int, size: int, written: str, start: int) -> Token:
    # As InfluxDB's, these two messages name no position.
    if count > MAX_DURATION_NS:
        raise ParseError("invalid duration")
    if count * size > MAX_DURATION_NS:
        raise ParseError(f"overflowed duration {written}: choose a smaller duration or INF")
    return Token("DURATION", count * size, start, written)
