"""POST /ingest: store a batch of points."""

from flask.views import MethodView

from tsapi.api.arguments import Blueprint
from tsapi.api.auth import requires
from tsapi.api.bodies import read_points_body
from tsapi.api.openapi import problem_doc
from tsapi.api.ratelimits import counted_before_its_store
from tsapi.api.resources.ingest.schemas import IngestRequestSchema, IngestResponseSchema
from tsapi.api.runtime import runtime
from tsapi.services.ingest import ingest_points

blp = Blueprint("ingest", __name__, description="Write points")


@blp.route("/ingest")
class Ingest(MethodView):
    @counted_before_its_store
    @requires(blp, "write")
    @blp.doc(
        requestBody={
            "required": True,
            "content": {
                "application/json": {"schema": IngestRequestSchema},
                "application/x-ndjson": {
                    "schema": {"type": "string"},
                    "example": '{"time": "2020-07-12T00:01:34Z", "metric": "temperature", '
                    '"value": 22.7}\n',
                },
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": "time,metric,value,room\n2020-07-12T00:01:34Z,temperature,22.7,"
                    "kitchen\n",
                },
            },
        }
    )
    @blp.response(200, IngestResponseSchema)
    @problem_doc(blp, 413, "Too many points in the batch, or body too large")
    @problem_doc(blp, 422, "Invalid points: every bad point listed by field")
    def post(self):
        """Store a batch of points, all or nothing

        Writing a point again for the same metric, tags and time replaces its value. If any
        point is invalid nothing is stored and every bad point is listed by index and field.
        Also takes NDJSON (one point per line, `application/x-ndjson`), CSV (`text/csv`: columns
        time, metric, value and tags; errors name lines) and `Content-Encoding: gzip`.
        """
        rt = runtime()
        result = ingest_points(rt, *read_points_body(rt.limits.max_batch_points))
        count = result.points if result else 0
        return {"message": f"Successfully ingested {count} data points", "ingested_count": count}
