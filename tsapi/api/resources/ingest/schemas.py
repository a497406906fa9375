"""Schemas of /ingest: they document the contract; the fast validator enforces it."""

import marshmallow as ma


class PointSchema(ma.Schema):
    time = ma.fields.String(
        required=True,
        metadata={"description": "ISO-8601 date-time (no offset means UTC) or Unix seconds",
                  "example": "2020-07-12T00:01:34.385975Z"},
    )
    metric = ma.fields.String(required=True, metadata={"example": "temperature"})
    value = ma.fields.Raw(
        required=True,
        metadata={"description": "A finite number or a string; a metric's first point fixes "
                  "its type", "example": 22.7, "oneOf": [{"type": "number"},
                                                          {"type": "string"}]},
    )
    tags = ma.fields.Dict(
        keys=ma.fields.String(), values=ma.fields.String(),
        metadata={"example": {"device": "b8:27:eb:bf:9d:51"}},
    )


class IngestRequestSchema(ma.Schema):
    data = ma.fields.List(ma.fields.Nested(PointSchema), required=True)


class IngestResponseSchema(ma.Schema):
    message = ma.fields.String(metadata={"example": "Successfully ingested 2 data points"})
    ingested_count = ma.fields.Integer(metadata={"example": 2})
