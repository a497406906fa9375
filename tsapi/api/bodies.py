"""Request bodies: the bytes of the current request, decompressed and read as points."""

from __future__ import annotations

from flask import current_app, request

from tsapi.formats.bodies import PointsBody, decode_content, parse_points


def body_bytes() -> bytes:
    """The request body, decompressed when sent with Content-Encoding: gzip."""
    return decode_content(request.get_data(cache=False), request.headers.get(
        "Content-Encoding"), current_app.config["TSAPI_MAX_BODY_BYTES"])


def read_points_body() -> PointsBody:
    """The raw point objects of the body, and how to re-read them exactly."""
    return parse_points(body_bytes(), request.mimetype)
