"""POST /api/v2/write and POST /write: InfluxDB line protocol, as Telegraf and clients send."""

from flask import Response
from flask.views import MethodView

from tsapi.api.arguments import Blueprint
from tsapi.api.auth import requires
from tsapi.api.bodies import body_chunks
from tsapi.api.openapi import problem_doc
from tsapi.api.ratelimits import counted_before_its_store
from tsapi.api.resources.influx.schemas import V1WriteArgsSchema, V2WriteArgsSchema
from tsapi.api.runtime import runtime
from tsapi.services.line_protocol_write import write_line_protocol

blp = Blueprint("influx", __name__, description="Write InfluxDB line protocol")

_BODY = {
    "required": True,
    "content": {"text/plain": {"schema": {"type": "string"},
                               "example": "weather,site=north temp=21.5,ok=t 1594512094\n"}},
}


@blp.route("/api/v2/write")
class V2Write(MethodView):
    @counted_before_its_store
    @requires(blp, "write")
    @blp.arguments(V2WriteArgsSchema, location="query")
    @blp.doc(requestBody=_BODY)
    @blp.response(204)
    @problem_doc(blp, 400, "A bad line: the first is named; nothing was stored")
    @problem_doc(blp, 413, "Too many points, or body too large")
    def post(self, args):
        """Store line protocol (InfluxDB 2 API), all or nothing

        Each field becomes the metric `<measurement>.<field>`; tags stay tags. Takes
        `Content-Encoding: gzip`.
        """
        write_line_protocol(runtime(), body_chunks(), args["precision"], args.get("bucket"),
                            args["accept_partial"])
        return Response(status=204)


@blp.route("/write")
class V1Write(MethodView):
    @counted_before_its_store
    @requires(blp, "write")
    @blp.arguments(V1WriteArgsSchema, location="query")
    @blp.doc(requestBody=_BODY)
    @blp.response(204)
    @problem_doc(blp, 400, "A bad line: the first is named; nothing was stored")
    @problem_doc(blp, 413, "Too many points, or body too large")
    def post(self, args):
        """Store line protocol (InfluxDB 1 API), all or nothing"""
        write_line_protocol(runtime(), body_chunks(), args["precision"], args.get("db"),
                            args["accept_partial"])
        return Response(status=204)
