"""Schemas of /query."""

from datetime import UTC, datetime

import marshmallow as ma

from tsapi.api.names import NAME, name_errors
from tsapi.formats import aggregations
from tsapi.formats.fill import FILL_MODES
from tsapi.formats.intervals import IntervalError, parse_interval
from tsapi.formats.point_times import submicro_error
from tsapi.formats.rendering import MIMETYPES
from tsapi.formats.timezones import timezone_problem
from tsapi.services.query import QueryRequest

MAX_METRICS = 20
TIME_FLOOR = datetime(1, 1, 3, tzinfo=UTC)
TIME_CEILING = datetime(9999, 12, 29, tzinfo=UTC)
MAX_GROUP_BY = 8


class RangeTime(ma.fields.AwareDateTime):
    """A range end that is kept exactly: past microseconds it is refused, as ingest refuses
    such a point time, rather than cut to another range."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and (problem := submicro_error(value)):
            raise ma.ValidationError(problem)
        return super()._deserialize(value, attr, data, **kwargs)


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


class AggregationField(ma.fields.Field):
    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ma.ValidationError("must be a string")
        try:
            return aggregations.parse_aggregation(value)
        except ValueError as exc:
            raise ma.ValidationError(str(exc)) from None


class TimezoneField(ma.fields.String):
    def _deserialize(self, value, attr, data, **kwargs):
        name = super()._deserialize(value, attr, data, **kwargs)
        problem = timezone_problem(name)
        if problem:
            raise ma.ValidationError(problem)
        return name


class TagFilterField(ma.fields.Field):
    """{"device": "a"} for equality, {"device": ["a", "b"]} for any of."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict) or len(value) > 32:
            raise ma.ValidationError("must be an object of at most 32 tag keys")
        out = {}
        for key, wanted in value.items():
            if isinstance(wanted, str):
                out[key] = wanted
            elif (isinstance(wanted, list) and 0 < len(wanted) <= 1000
                  and all(isinstance(v, str) for v in wanted)):
                out[key] = tuple(wanted)
            else:
                raise ma.ValidationError(
                    f"tag '{key[:64]}' must be a string or a non-empty list of strings")
        texts = [k for k in out] + [v for vals in out.values()
                                    for v in ((vals,) if isinstance(vals, str) else vals)]
        problem = name_errors(texts)
        if problem:
            raise ma.ValidationError(f"tags {problem}")
        return out


class QueryRequestSchema(ma.Schema):
    metric = ma.fields.String(
        validate=[ma.validate.Length(min=1), NAME], metadata={"example": "temperature"})
    metrics = ma.fields.List(
        ma.fields.String(validate=[ma.validate.Length(min=1), NAME]),
        validate=ma.validate.Length(min=1, max=MAX_METRICS),
        metadata={"description": "Several metrics, same range and options; rows carry "
                  "`metric`. Give `metric` or `metrics`."},
    )
    start_time = RangeTime(
        required=True, default_timezone=UTC,
        metadata={"description": "Range start, inclusive (no offset means UTC)",
                  "example": "2020-07-12T00:00:00Z"},
    )
    end_time = RangeTime(
        required=True, default_timezone=UTC,
        metadata={"description": "Range end, exclusive", "example": "2020-07-13T00:00:00Z"},
    )
    aggregation = AggregationField(
        metadata={"type": "string", "example": "avg", "pattern": aggregations.PATTERN,
                  "description": f"One of {aggregations.DESCRIPTION}. Without it, raw points."},
    )
    interval = IntervalField(
        metadata={"type": "string", "example": "1 hour",
                  "description": "Bucket width, e.g. '1 second', '15 minutes', '1 hour', "
                  "'1 day', '1 week', '1 month', or '15m', '1h', '1d', '1w', '1mo'. Without it "
                  "an aggregation gives one row for the whole range."},
    )
    tags = TagFilterField(
        metadata={"type": "object", "example": {"device": ["b8:27:eb:bf:9d:51"]},
                  "description": "Only series whose tags match: a string for equality, a "
                  "list for any of"},
    )
    group_by = ma.fields.List(
        ma.fields.String(validate=[ma.validate.Length(min=1, max=128), NAME]),
        validate=ma.validate.Length(max=MAX_GROUP_BY),
        metadata={"example": ["device"],
                  "description": "Tag keys; each row then carries its `tags`, rows ordered by "
                  "tags then time"},
    )
    timezone = TimezoneField(
        metadata={"example": "Europe/Berlin",
                  "description": "IANA zone: buckets align to local time (days to local "
                  "midnight across DST changes) and times are given with its offset"},
    )
    fill = ma.fields.String(
        validate=ma.validate.OneOf(FILL_MODES),
        metadata={"description": "Empty buckets: none (left out), null, zero, previous, "
                  "linear (previous/linear seeded from the last point before the range)"},
    )
    limit = ma.fields.Integer(
        strict=True,  # 1.5 rows is not a limit, and "10" is not a number
        # Above the server's own maximum a limit only says "all" (X-Tsapi-Limit answers);
        # past 2**53 it is not a JSON-safe integer, and the cache key could not hold it.
        validate=ma.validate.Range(min=1, max=2**53),
        metadata={"description": "Raw queries: at most this many rows (the server has its "
                  "own maximum; a cut result carries X-Tsapi-Truncated and a cursor)"},
    )
    order = ma.fields.String(validate=ma.validate.OneOf(("asc", "desc")),
                             metadata={"description": "Raw queries: time order"})
    cursor = ma.fields.String(
        validate=[ma.validate.Length(min=1, max=512), NAME],
        metadata={"description": "Raw queries: the X-Tsapi-Next-Cursor of the previous page"},
    )
    format = ma.fields.String(
        validate=ma.validate.OneOf(tuple(MIMETYPES)),
        metadata={"description": "json (default), csv or ndjson; or send an Accept header"},
    )

    @ma.validates_schema
    def _consistent(self, data, **kwargs):
        if ("metric" in data) == ("metrics" in data):
            raise ma.ValidationError("give exactly one of metric and metrics",
                                     field_name="metric")
        start, end = data.get("start_time"), data.get("end_time")
        if start and end and end <= start:
            raise ma.ValidationError("must be later than start_time", field_name="end_time")
        aggregated = data.get("aggregation") is not None
        if data.get("fill", "none") != "none" and not (aggregated and data.get("interval")):
            raise ma.ValidationError("needs an aggregation and an interval", field_name="fill")
        for name in ("limit", "order", "cursor"):
            if name in data and aggregated:
                raise ma.ValidationError("applies to raw queries only (no aggregation)",
                                         field_name=name)
        if "cursor" in data and data.get("group_by"):
            raise ma.ValidationError("paging by cursor does not combine with group_by",
                                     field_name="cursor")

    @ma.post_load
    def _to_request(self, data, **kwargs) -> QueryRequest:
        for key in ("start_time", "end_time"):
            try:
                data[key] = data[key].astimezone(UTC)
            except OverflowError:
                raise ma.ValidationError("is outside years 1 to 9999 in UTC",
                                         field_name=key) from None
            # Shown in another zone, or rounded down to a bucket start, a time within two
            # days of the ends of years 1-9999 can leave what Python and psycopg2 represent.
            shifted = "timezone" in data or "interval" in data
            if shifted and not TIME_FLOOR <= data[key] <= TIME_CEILING:
                raise ma.ValidationError(
                    f"must lie between {TIME_FLOOR.date().isoformat()} and "
                    f"{TIME_CEILING.date().isoformat()} "
                    "with a timezone or an interval", field_name=key)
        return QueryRequest(
            metrics=tuple(data["metrics"]) if "metrics" in data else (data["metric"],),
            multi="metrics" in data,
            start=data["start_time"],
            end=data["end_time"],
            aggregation=data.get("aggregation"),
            interval=data.get("interval"),
            timezone=data.get("timezone"),
            tags=data.get("tags") or {},
            # A key listed twice groups as once (rows would carry it twice).
            group_by=tuple(dict.fromkeys(data.get("group_by") or ())),
            fill=data.get("fill", "none"),
            descending=data.get("order") == "desc",
            limit=data.get("limit"),
            cursor=data.get("cursor"),
            format=data.get("format"),
        )


class QueryRowSchema(ma.Schema):
    time = ma.fields.DateTime(metadata={"example": "2020-07-12T00:00:00+00:00"})
    value = ma.fields.Raw(
        metadata={"example": 22.7, "description": "A number, a string (raw string metrics), "
                  "an integer count, or null (fill=null)",
                  "oneOf": [{"type": "number"}, {"type": "string"}], "nullable": True},
    )
    tags = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String(allow_none=True),
                          metadata={"description": "With group_by: the group's tag values"})
    metric = ma.fields.String(metadata={"description": "With metrics: the row's metric"})


class InfluxQLErrorSchema(ma.Schema):
    """InfluxDB 1.x's error body, which its clients display."""

    error = ma.fields.String(metadata={"example": "error parsing query: found SELEC, "
                                       "expected SELECT, SHOW at line 1, char 1"})
