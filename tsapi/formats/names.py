"""Which text may reach SQL: the one rule for names (metrics, tag keys and values) and values.

PostgreSQL text cannot hold U+0000, and a lone UTF-16 surrogate (U+D800 to U+DFFF, which the
standard JSON parser makes of "\\ud800") cannot be encoded for the database at all: either in a
bound parameter fails the statement. Names may not hold control characters either: ingest
refuses them, so no stored name has one, and a name with one can match nothing.

Every place that takes a name from a request (body fields, query strings, path parameters)
asks `name_problem`; string values, which may hold tabs and newlines, ask `text_problem`.
"""

from __future__ import annotations

import re

_NOT_TEXT = re.compile("[\x00\ud800-\udfff]")
_NOT_IN_NAMES = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")

NOT_TEXT = "must not contain the NUL character or unpaired surrogates (\\ud800 to \\udfff)"
NOT_A_NAME = "must not contain control characters or unpaired surrogates (\\ud800 to \\udfff)"


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored or bound as PostgreSQL text, or None when it can."""
    return NOT_TEXT if _NOT_TEXT.search(text) else None


def name_problem(text: str) -> str | None:
    """Why `text` cannot name a metric or a tag (key or value), or None when it can."""
    return NOT_A_NAME if _NOT_IN_NAMES.search(text) else None
