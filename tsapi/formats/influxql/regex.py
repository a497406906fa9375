"""Regular expressions from InfluxQL, run by RE2: time linear in the text searched."""

from __future__ import annotations

import re
from typing import Protocol

import re2

from tsapi.formats.influxql.tokens import MAX_REGEX_CHARS, InfluxQLError

# Matching runs on RE2 (InfluxDB's own Go regexp has its semantics), never on Python's `re`:
# shape rules cannot bound a backtracking engine, as `.*.*.*x` alone costs it n^3 steps on a
# 1,024-character tag value and a few more stars never finish. The shape checks below stay,
# so the same patterns as before are refused with a sentence naming why: no backreferences or
# lookaround, no repeated group that itself repeats or alternates, at most 16 quantifiers.
MAX_QUANTIFIERS = 16
_QUANTIFIER = re.compile(r"[*+?]|\{\d*,?\d*\}")
# (?i) (?is) set flags; (?:  (?i:  (?P<name> open a group.
_GROUP_FLAGS = re.compile(r"\(\?(?:[imsU]+\)|[imsU]*:|P<[A-Za-z_][A-Za-z0-9_]*>)")


class Pattern(Protocol):
    def search(self, text: str) -> object | None: ...


def compile_regex(pattern: str) -> Pattern:
    if len(pattern) > MAX_REGEX_CHARS:
        raise InfluxQLError(f"regular expression is longer than {MAX_REGEX_CHARS} characters")
    _check_regex(pattern)
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        raise InfluxQLError(f"invalid regular expression /{pattern[:64]}/: "
                            f"{_reason(exc)}") from None


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # a client's bad pattern is its 400, not a line on stderr
    return options


_OPTIONS = _options()


def _reason(exc: re2.error) -> str:
    reason = exc.args[0] if exc.args else ""
    return reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)


def _check_regex(pattern: str) -> None:
    # A stack of open groups: for each, whether it holds a quantifier or an alternation.
    stack: list[bool] = [False]
    quantifiers, i, n = 0, 0, len(pattern)
    closed_risky = False  # the group just closed holds a quantifier or an alternation
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 < n and (pattern[i + 1].isdigit() and pattern[i + 1] != "0"):
                raise InfluxQLError("backreferences are not supported in regular expressions")
            if i + 1 < n and pattern[i + 1] in "pPxXkg":
                raise InfluxQLError(f"\\{pattern[i + 1]} is not supported in regular "
                                    "expressions")
            i += 2
            closed_risky = False
            continue
        if c == "[":
            j = i + 1
            if j < n and pattern[j] == "^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            i = j + 1
            closed_risky = False
            continue
        if c == "(":
            closed_risky = False
            if pattern.startswith("(?", i):
                flags = _GROUP_FLAGS.match(pattern, i)
                if flags is None:
                    raise InfluxQLError("lookaround, backreferences and this group syntax "
                                        "are not supported in regular expressions")
                i = flags.end()
                if flags.group(0).endswith(")"):
                    continue  # (?i): flags only, no group
            else:
                i += 1
            if len(stack) > 16:
                raise InfluxQLError("regular expression nested too deeply")
            stack.append(False)
            continue
        elif c == ")":
            if len(stack) == 1:
                raise InfluxQLError("invalid regular expression: unbalanced )")
            closed_risky = stack.pop()
            stack[-1] = stack[-1] or closed_risky
        elif c == "|":
            stack[-1] = True
            closed_risky = False
        elif _QUANTIFIER.match(pattern, i):
            quantifiers += 1
            if quantifiers > MAX_QUANTIFIERS:
                raise InfluxQLError(f"more than {MAX_QUANTIFIERS} quantifiers in a regular "
                                    "expression")
            if closed_risky:
                raise InfluxQLError("a repeated group may not contain a repetition or an "
                                    "alternation (it could take exponential time)")
            stack[-1] = True
            i = _QUANTIFIER.match(pattern, i).end()
            if i < n and pattern[i] in "?+":
                i += 1
            closed_risky = False
            continue
        else:
            closed_risky = False
        i += 1
