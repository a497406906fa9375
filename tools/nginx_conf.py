"""Render deploy/nginx/tsapi.conf.template into a complete nginx.conf of its own.

    python tools/nginx_conf.py --dir .local/nginx --listen 127.0.0.1:8000 \\
        --node 127.0.0.1:8001 --node 127.0.0.1:8002 > .local/nginx/nginx.conf
    nginx -p .local/nginx -e .local/nginx/error.log -c nginx.conf -g 'daemon off;'

Used by `tools/dev up` and by the tests, so both run the very config a deployment gets.
The template's placeholders are replaced as envsubst would; nginx's own $variables stay.
Standard library only.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "nginx" / "tsapi.conf.template"
# The API's default body limit (tsapi.config.Settings.TSAPI_MAX_BODY_BYTES).
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
# Passive health checks: one failed connect or answer takes a node out for 5 s.
NODE_OPTIONS = "max_fails=1 fail_timeout=5s"


def upstream_servers(nodes: list[str]) -> str:
    return "\n    ".join(f"server {node} {NODE_OPTIONS};" for node in nodes)


def render_site(listen: str, nodes: list[str], max_body_bytes: int) -> str:
    """The template with its placeholders filled in (the http-context part)."""
    values = {
        "NGINX_LISTEN": listen,
        "NGINX_UPSTREAM_SERVERS": upstream_servers(nodes),
        "TSAPI_MAX_BODY_BYTES": str(max_body_bytes),
    }
    text = TEMPLATE.read_text()
    missing = {m for m in re.findall(r"\$\{(\w+)\}", text)} - set(values)
    if missing:
        raise ValueError(f"template placeholders without a value: {sorted(missing)}")
    return re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], text)


def render(directory: Path, listen: str, nodes: list[str],
           max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, worker_processes: int = 1) -> str:
    """A whole nginx.conf whose pid, logs and temporary files all live in `directory`."""
    if not nodes:
        raise ValueError("at least one API node is needed")
    d = Path(directory).resolve()
    # As root nginx would run its workers as nobody; they only write temporary files here.
    user = "user nobody nogroup;\n" if os.geteuid() == 0 else ""
    source = TEMPLATE.relative_to(ROOT)
    return f"""# Written by tools/nginx_conf.py from {source}; edits are overwritten.
{user}worker_processes {worker_processes};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{
    worker_connections 1024;
}}
http {{
    default_type application/octet-stream;
    access_log {d}/access.log;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;

{render_site(listen, nodes, max_body_bytes)}
}}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", required=True, type=Path,
                        help="where nginx keeps its pid, logs and temporary files")
    parser.add_argument("--listen", required=True, help="address:port to listen on")
    parser.add_argument("--node", action="append", required=True,
                        help="an API node's host:port (repeat for each node)")
    parser.add_argument("--max-body-bytes", type=int, default=int(
        os.environ.get("TSAPI_MAX_BODY_BYTES") or DEFAULT_MAX_BODY_BYTES))
    args = parser.parse_args(argv)
    sys.stdout.write(render(args.dir, args.listen, args.node, args.max_body_bytes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
