"""GET /, GET /health, the OpenAPI document and the Swagger UI page with its local assets."""

from __future__ import annotations

import re

import pytest
from helpers import PROBLEM_JSON, PageAssets, assert_problem

import tsapi

# --- GET / and GET /health ---------------------------------------------------------------


def test_root_names_the_service_and_its_docs(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["message"] == "Super-Simple Timeseries API Service"
    assert body["version"] == tsapi.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", body["version"])
    assert body["redis_status"] == "connected"
    assert body["docs"] == "/docs"


def test_every_link_the_root_advertises_exists(client):
    body = client.get("/").get_json()
    paths = [v for k, v in body.items() if isinstance(v, str) and v.startswith("/")]
    assert "/docs" in paths
    for path in paths:
        assert client.get(path).status_code == 200, path
    for name, link in (body.get("links") or {}).items():
        method, path = link.split(" ", 1)
        assert method in {"GET", "POST"}, link
        if method == "GET":
            assert client.get(path).status_code == 200, name


def test_health_reports_healthy_database_redis_and_the_backend(client, backend):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["status"] == "healthy"
    assert body["database"] == "healthy"
    assert body["redis"] == "healthy"
    assert body["storage"] == backend
    assert body["hypertable"] is (backend == "timescaledb")


def test_health_reports_timescaledb_version_only_on_timescaledb(client, backend):
    body = client.get("/health").get_json()
    if backend == "timescaledb":
        assert isinstance(body["timescaledb_version"], str)
        assert re.match(r"\d+\.\d+", body["timescaledb_version"])
    else:
        assert body.get("timescaledb_version") is None


def test_unknown_path_is_a_404_problem(client):
    problem = assert_problem(client.get("/no/such/path"), 404)
    assert problem["title"] == "Not Found"


# --- OpenAPI -----------------------------------------------------------------------------

ENDPOINTS = [
    ("/ingest", "post"),
    ("/query", "post"),
    ("/metrics", "get"),
    ("/cache/info", "get"),
    ("/cache/clear", "post"),
    ("/cache/keys", "get"),
    ("/cache/metrics/{metric}/clear", "post"),
    ("/health", "get"),
    ("/", "get"),
]


@pytest.fixture
def spec(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def resolve(spec: dict, node: dict) -> dict:
    """Follow local $refs ("#/components/...") until a concrete object."""
    while "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = spec
        for part in ref[2:].split("/"):
            node = node[part]
    return node


def properties(spec: dict, schema: dict) -> dict:
    schema = resolve(spec, schema)
    if schema.get("type") == "array":
        schema = resolve(spec, schema["items"])
    return schema.get("properties", {})


def ok_schema(spec: dict, path: str, method: str) -> dict:
    response = resolve(spec, spec["paths"][path][method]["responses"]["200"])
    return response["content"]["application/json"]["schema"]


def request_schema(spec: dict, path: str, method: str) -> dict:
    body = resolve(spec, spec["paths"][path][method]["requestBody"])
    return body["content"]["application/json"]["schema"]


def test_openapi_is_version_3_with_title_and_version(spec):
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"]
    assert spec["info"]["version"] == tsapi.__version__


@pytest.mark.parametrize(("path", "method"), ENDPOINTS)
def test_openapi_documents_every_endpoint_with_a_200_schema(spec, path, method):
    assert path in spec["paths"], sorted(spec["paths"])
    operation = spec["paths"][path].get(method)
    assert operation is not None, (path, sorted(spec["paths"][path]))
    schema = resolve(spec, ok_schema(spec, path, method))
    assert schema.get("type") in {"object", "array"}
    assert properties(spec, schema), (path, schema)


def test_every_documented_get_path_answers_200(spec, client):
    # Every documented GET path without path parameters answers (no stale documentation);
    # required query parameters are sent with their documented example.
    for path, operations in spec["paths"].items():
        if "get" in operations and "{" not in path:
            required = {p["name"]: p["example"] for p in operations["get"].get("parameters", [])
                        if p.get("in") == "query" and p.get("required")}
            assert client.get(path, query_string=required).status_code == 200, path


def test_openapi_ingest_request_schema_describes_points(spec):
    schema = resolve(spec, request_schema(spec, "/ingest", "post"))
    assert "data" in schema["properties"]
    assert "data" in schema.get("required", [])
    data = resolve(spec, schema["properties"]["data"])
    assert data["type"] == "array"
    point = resolve(spec, data["items"])
    assert {"time", "metric", "value", "tags"} <= set(point["properties"])
    assert {"time", "metric", "value"} <= set(point.get("required", []))
    assert "tags" not in point.get("required", [])


def test_openapi_ingest_response_schema(spec):
    props = properties(spec, ok_schema(spec, "/ingest", "post"))
    assert {"message", "ingested_count"} <= set(props)
    assert props["ingested_count"]["type"] == "integer"


def test_openapi_query_request_schema_lists_fields_and_aggregations(spec):
    schema = resolve(spec, request_schema(spec, "/query", "post"))
    props = schema["properties"]
    assert {"metric", "metrics", "start_time", "end_time", "aggregation", "interval", "tags",
            "group_by", "timezone", "fill", "limit", "order", "cursor", "format"} == set(props)
    # metric or metrics: the schema requires one of them, checked by the server.
    assert set(schema.get("required", [])) == {"start_time", "end_time"}
    pattern = re.compile(props["aggregation"]["pattern"])
    for name in ["avg", "count", "max", "min", "sum", "first", "last", "median", "stddev",
                 "p90", "p99.9", "count_distinct", "rate", "delta", "increase"]:
        assert pattern.match(name), name
    for name in ["mean", "p100", "p", "avg;"]:
        assert not pattern.match(name), name
    assert props["start_time"].get("format") == "date-time"
    assert props["end_time"].get("format") == "date-time"
    assert props["interval"].get("type") == "string"


def test_openapi_query_response_is_an_array_of_time_value_rows(spec):
    schema = resolve(spec, ok_schema(spec, "/query", "post"))
    assert schema["type"] == "array"
    assert {"time", "value"} <= set(properties(spec, schema))


@pytest.mark.parametrize(("path", "method", "fields"), [
    ("/metrics", "get", {"name", "first_seen", "last_seen", "value_type"}),
    ("/cache/info", "get", {"status", "backend", "hits", "misses", "keys"}),
    ("/cache/keys", "get", {"count", "keys"}),
    ("/cache/clear", "post", {"message"}),
    ("/cache/metrics/{metric}/clear", "post", {"message"}),
    ("/health", "get", {"status", "database", "redis", "storage", "hypertable"}),
    ("/", "get", {"message", "version", "redis_status", "docs"}),
])
def test_openapi_response_schemas_name_the_returned_fields(spec, path, method, fields):
    assert fields <= set(properties(spec, ok_schema(spec, path, method)))


def test_openapi_metric_clear_documents_its_path_parameter(spec):
    item = spec["paths"]["/cache/metrics/{metric}/clear"]
    params = item.get("parameters", []) + item["post"].get("parameters", [])
    params = [resolve(spec, p) for p in params]
    assert any(p["name"] == "metric" and p["in"] == "path" and p["required"] for p in params)


def test_openapi_documents_errors_as_problem_json(spec):
    # Errors are served as application/problem+json: the document should say so.
    for path, method in ENDPOINTS:
        responses = spec["paths"][path][method]["responses"]
        default = resolve(spec, responses["default"])
        assert PROBLEM_JSON in default.get("content", {}), (path, default.get("content"))


DOCUMENTED_ERRORS = [("/ingest", "post", "413"), ("/ingest", "post", "422"),
                     ("/query", "post", "400"), ("/query", "post", "404"),
                     ("/query", "post", "422")]


def test_openapi_documented_error_responses_have_the_problem_schema(spec):
    missing = []
    for path, method, status in DOCUMENTED_ERRORS:
        response = resolve(spec, spec["paths"][path][method]["responses"][status])
        content = response.get("content") or {}
        if not content:
            missing.append(f"{method.upper()} {path} {status}")
            continue
        schema = resolve(spec, next(iter(content.values()))["schema"])
        assert {"type", "title", "status", "detail"} <= set(schema["properties"])
    assert missing == [], "error responses documented without a schema"


# --- Swagger UI --------------------------------------------------------------------------


def test_docs_page_is_html_whose_assets_load_from_this_server(client):
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    parser = PageAssets()
    parser.feed(response.get_data(as_text=True))
    assert parser.scripts, "no script assets"
    for url in parser.scripts + parser.styles:
        assert not re.match(r"^(https?:)?//", url), f"asset from another host: {url}"
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.get_data()) > 1000, url
    for url in parser.scripts:
        assert "javascript" in client.get(url).mimetype, url


def test_docs_page_points_at_this_servers_openapi_document(client):
    html = client.get("/docs").get_data(as_text=True)
    match = re.search(r"""url:\s*["']([^"']+)["']""", html)
    assert match, "no spec url in the page"
    assert client.get(match.group(1)).status_code == 200


def test_missing_docs_asset_is_404(client):
    assert client.get("/docs/assets/no-such-file.js").status_code == 404
    assert client.get("/docs/assets/../../etc/passwd").status_code == 404
