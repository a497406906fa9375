"""flask-smorest's Blueprint, reading JSON arguments so that no body can make it fail.

webargs reads a JSON body with the standard parser and turns only its syntax errors into a
400. The parser also refuses integers of more than 4,300 digits (ValueError) and nesting deeper
than Python's recursion limit (RecursionError); both escaped as 500s. Here they are 400s.

Unpaired surrogate escapes ("\\ud800") are read as the standard parser reads them: the schema's
fields then refuse them by name (tsapi.api.names), which tells a client which field is wrong.

Argument schemas are built once, when a view is declared: given a class, webargs builds a
fresh instance on every request (a deep copy of every field, about a tenth of a cached
/query's time). The schemas keep no state between loads, so one instance serves them all.
"""

from __future__ import annotations

from typing import Any

import flask_smorest
from webargs.flaskparser import FlaskParser

from tsapi.errors import BadRequest, field_error


class _JsonArgumentsParser(FlaskParser):
    def load_json(self, req: Any, schema: Any) -> Any:
        # load_json is the parser's public hook for reading JSON; webargs itself answers
        # syntax errors with a 400 inside it, and lets these two through.
        try:
            return super().load_json(req, schema)
        except RecursionError:
            raise _unreadable("is nested too deeply") from None
        except ValueError:  # "Exceeds the limit (4300 digits) for integer string conversion"
            raise _unreadable("holds an integer of more than 4,300 digits") from None


def _unreadable(why: str) -> BadRequest:
    return BadRequest(f"Request body is not valid JSON: it {why}",
                      errors=[field_error("body", why)])


class Blueprint(flask_smorest.Blueprint):
    """flask_smorest.Blueprint whose @arguments read JSON bodies with the parser above."""

    ARGUMENTS_PARSER = _JsonArgumentsParser()

    def arguments(self, schema: Any, *args: Any, **kwargs: Any) -> Any:
        """flask-smorest's @arguments, the schema instantiated once (see above)."""
        if isinstance(schema, type):
            schema = schema()
        return super().arguments(schema, *args, **kwargs)
