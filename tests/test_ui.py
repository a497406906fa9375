"""The explorer page over HTTP: HTML at /ui, assets served locally, linked from / and docs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urljoin

from helpers import PageAssets

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "tsapi" / "static" / "ui" / "vendor"


def test_ui_is_an_html_page_locked_to_this_origin(client):
    response = client.get("/ui")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_ui_assets_are_served_by_this_service(client):
    parser = PageAssets()
    parser.feed(client.get("/ui").get_data(as_text=True))
    paths = {urljoin("http://localhost/ui", url) for url in parser.scripts + parser.styles}
    assert {"http://localhost/ui/assets/vendor/uPlot.iife.min.js",
            "http://localhost/ui/assets/vendor/uPlot.min.css",
            "http://localhost/ui/assets/explorer.js"} <= paths
    for url in parser.scripts + parser.styles:
        assert not re.match(r"^(https?:)?//", url), f"asset from another host: {url}"
        asset = client.get(urljoin("/ui", url))
        assert asset.status_code == 200, url
        assert len(asset.get_data()) > 500, url


def test_unknown_ui_asset_is_a_404_problem(client):
    response = client.get("/ui/assets/no-such-file.js")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_root_links_to_the_ui_and_stays_json(client):
    response = client.get("/")
    assert response.mimetype == "application/json"
    assert response.get_json()["links"]["ui"] == "GET /ui"


def test_openapi_documents_ui_as_html(client):
    spec = client.get("/openapi.json").get_json()
    ok = spec["paths"]["/ui"]["get"]["responses"]["200"]
    assert list(ok["content"]) == ["text/html"]


def test_vendored_uplot_is_the_version_pinned_in_ui_package_files():
    pinned = json.loads((ROOT / "ui" / "package.json").read_text())["dependencies"]["uplot"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned), "pin an exact version"
    lock = json.loads((ROOT / "ui" / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/uplot"]["version"] == pinned
    assert (VENDOR / "VERSION").read_text().startswith(f"uPlot {pinned} ")
    # uPlot's build stamps its version into the first line of the minified file.
    assert f"(v{pinned})" in (VENDOR / "uPlot.iife.min.js").read_text().splitlines()[0]
    assert "MIT" in (VENDOR / "uPlot.LICENSE").read_text()
