"""Schemas of /metrics."""

import marshmallow as ma

from tsapi.api.names import NAME


class MetricSchema(ma.Schema):
    name = ma.fields.String(metadata={"example": "temperature"})
    first_seen = ma.fields.DateTime(allow_none=True,
                                    metadata={"description": "Earliest stored point"})
    last_seen = ma.fields.DateTime(allow_none=True,
                                   metadata={"description": "Latest stored point"})
    value_type = ma.fields.String(metadata={"enum": ["number", "string"]})


class AsciiInteger(ma.fields.Integer):
    """An integer from a query string, in ASCII digits: int() alone reads '١٠' as 10."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and not value.isascii():
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class MetricListArgs(ma.Schema):
    prefix = ma.fields.String(validate=[ma.validate.Length(min=1, max=255), NAME],
                              metadata={"description": "Only names starting with this"})
    limit = AsciiInteger(validate=ma.validate.Range(min=1, max=100_000))


class MetricDetailSchema(MetricSchema):
    point_count = ma.fields.Integer(metadata={"description": "Exact count of stored points"})
    series_count = ma.fields.Integer()
    tag_keys = ma.fields.List(ma.fields.String())


class TagValuesSchema(ma.Schema):
    metric = ma.fields.String()
    key = ma.fields.String()
    values = ma.fields.List(ma.fields.String())


class LatestArgs(ma.Schema):
    tag = ma.fields.List(
        ma.fields.String(validate=[ma.validate.Regexp(r"^[^=]+=", error="must be key=value"),
                                   NAME]),
        metadata={"description": "Tag filter as key=value; repeat for several keys",
                  "example": ["device=b8:27:eb:bf:9d:51"]},
    )


class LatestPointSchema(ma.Schema):
    time = ma.fields.DateTime()
    value = ma.fields.Raw(metadata={"oneOf": [{"type": "number"}, {"type": "string"}]})
    tags = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())
