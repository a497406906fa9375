"""flask-smorest's Blueprint, reading JSON arguments so that no body can make it fail.

webargs reads a JSON body with the standard parser, only under a JSON Content-Type, and keeps
the last of repeated keys. Here the body (tsapi's own /query document) is read whatever its
Content-Type and gzip too, as /ingest reads one (a form body never gets here: it is
InfluxQL), is at most MAX_JSON_BODY_BYTES (decompressed too), and a repeated key is a 422
naming it, as in an ingest body. The
standard parser's other refusals, integers of more than 4,300 digits (ValueError) and nesting
deeper than Python's recursion limit (RecursionError), are 400s rather than 500s.

Unpaired surrogate escapes ("\\ud800") are read as the standard parser reads them: the schema's
fields then refuse them by name (tsapi.api.names), which tells a client which field is wrong.

Argument schemas are built once, when a view is declared: given a class, webargs builds a
fresh instance on every request (a deep copy of every field, about a tenth of a cached
/query's time). The schemas keep no state between loads, so one instance serves them all.
"""

from __future__ import annotations

import json
from typing import Any

import flask_smorest
from webargs import missing
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import RequestEntityTooLarge

from tsapi.errors import BadRequest, InvalidInput, PayloadTooLarge, field_error
from tsapi.formats.body_stream import inflate
from tsapi.formats.strict_json import RepeatedKey, repeated_key_message, unique_keys_decoder

# A query document is a few hundred bytes; its largest legitimate form (20 metrics, 32 tag
# keys of up to 1,000 values) stays far below. Parsed, JSON takes up to twenty times its
# size in objects: without this bound a 64 MB body ([[], [], ...]) held over 1 GB.
MAX_JSON_BODY_BYTES = 1024 * 1024
_DECODER = unique_keys_decoder()


class _JsonArgumentsParser(FlaskParser):
    def load_json(self, req: Any, schema: Any) -> Any:
        # load_json is the parser's public hook for reading JSON.
        raw = _bounded_body(req)
        if not raw:
            return missing  # the schema names the required fields
        try:
            return _DECODER.decode(raw.decode("utf-8"))
        except RepeatedKey as exc:
            message = repeated_key_message(exc)
            raise InvalidInput(f"Request body {message}", errors=[field_error("body", message)]
                               ) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadRequest(f"Request body is not valid JSON: {exc}",
                             errors=[field_error("body", "is not valid JSON")]) from None
        except RecursionError:
            raise _unreadable("is nested too deeply") from None
        except ValueError:  # "Exceeds the limit (4300 digits) for integer string conversion"
            raise _unreadable("holds an integer of more than 4,300 digits") from None


def _bounded_body(req: Any) -> bytes:
    """The body, refused by its Content-Length past the limit, and a chunked one read only
    one byte past it (werkzeug's own limit would end the read there without a word)."""
    limit = min(MAX_JSON_BODY_BYTES, req.max_content_length or MAX_JSON_BODY_BYTES)
    if (req.content_length or 0) > limit:
        raise _too_large(limit)
    req.max_content_length = limit + 1
    try:
        raw = req.get_data(cache=True)
    except RequestEntityTooLarge:
        raise _too_large(limit) from None
    if len(raw) > limit:
        raise _too_large(limit)
    # Content-Encoding: gzip, as /ingest takes it, decompressed within the same limit (its
    # refusals name the body, as every other refusal of a query document does).
    try:
        return b"".join(inflate((raw,), req.headers.get("Content-Encoding"), limit))
    except PayloadTooLarge:
        raise _too_large(limit) from None


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"Request body too large: a query is at most {limit} bytes",
                           errors=[field_error("body", f"is over {limit} bytes")])


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
