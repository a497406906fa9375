"""A real nginx (Debian's package) in front of API nodes, with the config tools/dev renders."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from gunicorn_server import request_once
from services import HOST, ServiceError, _die_with_parent, _make_traversable, free_port

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import nginx_conf  # noqa: E402

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


class NginxServer:
    """`nginx -g 'daemon off;'` on a free port, proxying to `nodes` ("host:port" each)."""

    def __init__(self, workdir: Path, nodes: list[str], **render_options):
        if not Path(NGINX).exists():
            raise ServiceError("nginx not found: tools/dev up / tools/dev test install it")
        self.port = free_port()
        self.dir = Path(workdir) / f"nginx-{self.port}"
        self.dir.mkdir(parents=True)
        if os.geteuid() == 0:
            _make_traversable(self.dir)  # its workers run as nobody and write temp files here
        self.conf = self.dir / "nginx.conf"
        self.conf.write_text(nginx_conf.render(self.dir, f"{HOST}:{self.port}", nodes,
                                               **render_options))
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> NginxServer:
        self.process = subprocess.Popen(
            [NGINX, "-p", str(self.dir), "-e", str(self.dir / "error.log"), "-c",
             str(self.conf), "-g", "daemon off;"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServiceError(f"nginx exited at start:\n{self.error_log()}")
            try:
                conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
                conn.connect()
                conn.close()
                return self
            except OSError:
                time.sleep(0.05)
        raise ServiceError(f"nginx did not listen within {timeout} s:\n{self.error_log()}")

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float = 60.0):
        """(status, headers, body) of one request on a new connection."""
        return request_once(self.port, method, path, body, headers, timeout)

    def error_log(self) -> str:
        try:
            return (self.dir / "error.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # fast shutdown
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> NginxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
