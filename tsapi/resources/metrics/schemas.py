"""Schemas of /metrics."""

import marshmallow as ma


class MetricSchema(ma.Schema):
    name = ma.fields.String(metadata={"example": "temperature"})
    first_seen = ma.fields.DateTime(allow_none=True,
                                    metadata={"description": "Earliest stored point"})
    last_seen = ma.fields.DateTime(allow_none=True,
                                   metadata={"description": "Latest stored point"})
    value_type = ma.fields.String(metadata={"enum": ["number", "string"]})
