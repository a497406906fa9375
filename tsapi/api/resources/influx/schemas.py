"""Query parameters of the InfluxDB write endpoints."""

import marshmallow as ma

from tsapi.api.names import NAME
from tsapi.services.line_protocol_write import PRECISIONS

_PRECISION = ma.validate.OneOf(list(PRECISIONS))
_PARTIAL = "Store the good lines even when some are bad (the answer is still 400)"


class V2WriteArgsSchema(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE  # orgID and whatever else clients send

    org = ma.fields.String(validate=NAME, metadata={"description": "Accepted and ignored"})
    bucket = ma.fields.String(validate=NAME, metadata={"description": "Recorded as a tag when "
                                        "TSAPI_INFLUX_BUCKET_TAG is set"})
    precision = ma.fields.String(load_default="ns", validate=_PRECISION)
    accept_partial = ma.fields.Boolean(load_default=False, metadata={"description": _PARTIAL})


class V1WriteArgsSchema(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE  # rp, u, p, consistency

    db = ma.fields.String(validate=NAME, metadata={"description": "Recorded as a tag when "
                                    "TSAPI_INFLUX_BUCKET_TAG is set"})
    precision = ma.fields.String(load_default="n", validate=_PRECISION)
    accept_partial = ma.fields.Boolean(load_default=False, metadata={"description": _PARTIAL})
