"""Schemas of /query."""

from datetime import UTC

import marshmallow as ma

from tsapi import aggregations
from tsapi.intervals import IntervalError, parse_interval


class IntervalField(ma.fields.Field):
    """A bucket width in PostgreSQL words ("15 minutes") or shorthand ("15m")."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ma.ValidationError("must be a string such as '1 hour' or '15m'")
        try:
            return parse_interval(value)
        except IntervalError as exc:
            raise ma.ValidationError(str(exc)) from None

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else str(value)


class QueryRequestSchema(ma.Schema):
    metric = ma.fields.String(
        required=True, validate=ma.validate.Length(min=1), metadata={"example": "temperature"}
    )
    start_time = ma.fields.AwareDateTime(
        required=True, default_timezone=UTC,
        metadata={"description": "Range start, inclusive (no offset means UTC)",
                  "example": "2020-07-12T00:00:00Z"},
    )
    end_time = ma.fields.AwareDateTime(
        required=True, default_timezone=UTC,
        metadata={"description": "Range end, exclusive", "example": "2020-07-13T00:00:00Z"},
    )
    aggregation = ma.fields.String(
        validate=ma.validate.OneOf(sorted(aggregations.ALL)),
        metadata={"description": "Without it, raw points are returned", "example": "avg"},
    )
    interval = IntervalField(
        metadata={"type": "string", "example": "1 hour",
                  "description": "Bucket width, e.g. '1 second', '15 minutes', '1 hour', "
                  "'1 day', '1 week', '1 month', or '15m', '1h', '1d', '1w', '1mo'. Without it "
                  "an aggregation gives one row for the whole range."},
    )

    @ma.validates_schema
    def _range_is_forward(self, data, **kwargs):
        start, end = data.get("start_time"), data.get("end_time")
        if start and end and end <= start:
            raise ma.ValidationError("must be later than start_time", field_name="end_time")

    @ma.post_load
    def _to_utc(self, data, **kwargs):
        for key in ("start_time", "end_time"):
            data[key] = data[key].astimezone(UTC)
        return data


class QueryRowSchema(ma.Schema):
    time = ma.fields.DateTime(metadata={"example": "2020-07-12T00:00:00+00:00"})
    value = ma.fields.Raw(
        metadata={"example": 22.7, "description": "A number, a string (raw string metrics), "
                  "or an integer count", "oneOf": [{"type": "number"}, {"type": "string"}]},
    )
