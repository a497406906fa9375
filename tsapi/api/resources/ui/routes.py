"""GET /ui: a small page to explore the stored data, and its static files under /ui/assets/."""

from pathlib import Path

from flask import send_from_directory
from flask.views import MethodView

from tsapi.api.arguments import Blueprint

STATIC_DIR = Path(__file__).resolve().parents[3] / "static" / "ui"

# The page talks only to this service: no script, style or request may go anywhere else.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "style-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)

blp = Blueprint(
    "ui", __name__, description="Explorer page (HTML for browsers)",
    static_folder=str(STATIC_DIR), static_url_path="/ui/assets",
)


@blp.after_request
def _lock_down(response):
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@blp.route("/ui")
class Explorer(MethodView):
    @blp.doc(responses={"200": {
        "description": "The explorer page: pick a metric, range and aggregation; see a chart, "
        "a table and the equivalent curl command",
        "content": {"text/html": {"schema": {"type": "string"}}},
    }})
    def get(self):
        """An HTML page to explore the stored data"""
        return send_from_directory(STATIC_DIR, "index.html", mimetype="text/html")
