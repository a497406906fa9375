"""Request bodies: the bytes of the current request as they arrive, counted and decompressed.

Nothing is stored from a body that did not arrive whole: a body shorter than its
Content-Length, a chunked body that breaks off or has bad framing, or one that stops
arriving in time (see tsapi.api.worker) is refused before any point is written, because
the parsers read from this stream and the store is only called after they finish.
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import current_app, request

from tsapi.api.problems import HttpError
from tsapi.errors import BadRequest, field_error
from tsapi.formats.bodies import PointsBody, parse_points
from tsapi.formats.body_stream import CHUNK_BYTES, inflate


class RequestTimeout(HttpError):
    """The body stopped arriving before the server's read deadline."""

    status = 408


def raw_chunks() -> Iterator[bytes]:
    """The body as sent, in chunks; BadRequest if it ends before its Content-Length."""
    expected = request.content_length
    received = 0
    stream = request.stream
    while True:
        try:
            chunk = stream.read(CHUNK_BYTES)
        except Exception as exc:
            # A client gone mid-body (werkzeug's ClientDisconnected, raised while handling
            # the server's error), a read past the deadline (tsapi.api.worker), or chunked
            # framing the WSGI server cannot read (gunicorn raises its own ParseException
            # subclasses, others IOError or ValueError): the body is not whole.
            if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
                raise RequestTimeout(
                    f"The request body did not arrive in time ({received} bytes received); "
                    "nothing was stored", headers={"Connection": "close"}) from None
            raise BadRequest(f"The request body ended early or its framing is invalid "
                             f"({received} bytes received): nothing was stored. "
                             f"({type(exc).__name__})",
                             errors=[field_error("body", "is cut short or badly framed")]
                             ) from None
        if not chunk:
            break
        received += len(chunk)
        yield chunk
    if expected is not None and received < expected:
        raise BadRequest(f"The request body ended after {received} of its {expected} bytes "
                         "(Content-Length); nothing was stored",
                         errors=[field_error("body", "is shorter than its Content-Length")])


def body_chunks() -> Iterator[bytes]:
    """The body decompressed when sent with Content-Encoding: gzip, in chunks; at most
    TSAPI_MAX_BODY_BYTES once decompressed, refused as soon as it grows past that."""
    return inflate(raw_chunks(), request.headers.get("Content-Encoding"),
                   current_app.config["TSAPI_MAX_BODY_BYTES"])


def read_points_body(max_points: int) -> PointsBody:
    """The raw point objects of the body, and how to re-read them exactly."""
    return parse_points(body_chunks(), request.mimetype, max_points)
